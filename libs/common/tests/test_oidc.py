"""The shared OIDC verifier against a real (local) JWKS endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from turnout_common.errors import AuthenticationFailed
from turnout_common.oidc import OidcSettings, OidcVerifier, oidc_settings
from turnout_common.testing.oidc import Jwks


@pytest.fixture(scope="module")
def sso() -> Iterator[Jwks]:
    with Jwks() as jwks:
        yield jwks


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OidcVerifier.from_settings(OidcSettings()) is None  # off unless configured
    monkeypatch.setenv("TURNOUT_OIDC_ISSUER", "https://sso.example/realms/x")
    assert not OidcSettings().oidc_enabled  # needs the JWKS URL too
    monkeypatch.setenv("TURNOUT_OIDC_JWKS_URL", "https://sso.example/certs")
    monkeypatch.setenv("TURNOUT_OIDC_AUDIENCE", "turnout")
    monkeypatch.setenv("TURNOUT_OIDC_ROLE_CLAIM", "realm_access.roles")
    monkeypatch.setenv("TURNOUT_OIDC_ADMIN_ROLE", "turnout-admin")
    verifier = OidcVerifier.from_settings(oidc_settings(object()))
    assert verifier is not None
    assert (verifier.issuer, verifier.audience) == ("https://sso.example/realms/x", "turnout")
    assert (verifier.role_claim, verifier.admin_role) == ("realm_access.roles", "turnout-admin")
    explicit = OidcSettings(oidc_issuer="https://other", oidc_jwks_url="https://other/certs")
    assert oidc_settings(explicit) is explicit


async def test_verify(sso: Jwks) -> None:
    verifier = OidcVerifier.from_settings(OidcSettings.model_validate(sso.settings()))
    assert verifier is not None
    admin = await verifier.verify(sso.token(["dev", "admin"], preferred_username="ann"))
    assert admin.is_admin and admin.subject == "oidc:ann"
    user = await verifier.verify(sso.token(["viewer"], sub="u-1"))
    assert not user.is_admin and user.subject == "u-1"
    keycloak = OidcVerifier(
        issuer=sso.issuer,
        jwks_url=sso.jwks_url,
        audience=None,
        role_claim="realm_access.roles",
    )
    nested = sso.token([], realm_access={"roles": ["admin"]}, aud="account")
    assert (await keycloak.verify(nested)).is_admin
    assert (await keycloak.verify(sso.token([], scope_roles="admin"))).is_admin is False
    for bad in (
        sso.forged(["admin"]),
        sso.token(["admin"], iss="https://evil.example"),
        sso.token(["admin"], aud="someone-else"),
        sso.token(["admin"], exp=1000),
    ):
        with pytest.raises(AuthenticationFailed) as err:
            await verifier.verify(bad)
        assert err.value.status == 401 and err.value.code == "invalid_token"
    assert OidcVerifier.looks_like_jwt(sso.token(["admin"]))
    assert not OidcVerifier.looks_like_jwt("tk-some-virtual-key")
