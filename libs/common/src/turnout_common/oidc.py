"""Optional OIDC (SSO, e.g. Keycloak) for the admin APIs: verify a JWT against the issuer's
JWKS and read its roles.

Every admin-plane service (config-api, health-worker, metering) accepts such a JWT as an
admin credential when ``TURNOUT_OIDC_ISSUER`` and ``TURNOUT_OIDC_JWKS_URL`` are set; a JWT
with the admin role (``TURNOUT_OIDC_ROLE_CLAIM`` / ``TURNOUT_OIDC_ADMIN_ROLE``) is an admin,
any other valid one a user (its ``sub``), and an invalid one is refused with 401.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
from pydantic_settings import BaseSettings, SettingsConfigDict

from turnout_common.auth import Principal
from turnout_common.errors import AuthenticationFailed

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class OidcSettings(BaseSettings):
    """``TURNOUT_OIDC_*``: OIDC is on when both the issuer and the JWKS URL are set."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore")

    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_role_claim: str = "roles"
    oidc_admin_role: str = "admin"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_jwks_url)


def oidc_settings(settings: object | None = None) -> OidcSettings:
    """``settings`` if it carries the OIDC fields (e.g. config-api's), else the environment's."""
    return settings if isinstance(settings, OidcSettings) else OidcSettings()


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles`` for Keycloak)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class OidcVerifier:
    """Validates signature (JWKS, cached), issuer, audience and expiry."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str,
        audience: str | None,
        role_claim: str = "roles",
        admin_role: str = "admin",
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.role_claim = role_claim
        self.admin_role = admin_role
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)

    @classmethod
    def from_settings(cls, settings: OidcSettings) -> OidcVerifier | None:
        """The verifier the settings ask for, or None when OIDC is off."""
        if not settings.oidc_enabled:
            return None
        assert settings.oidc_issuer is not None and settings.oidc_jwks_url is not None
        return cls(
            issuer=settings.oidc_issuer,
            jwks_url=settings.oidc_jwks_url,
            audience=settings.oidc_audience,
            role_claim=settings.oidc_role_claim,
            admin_role=settings.oidc_admin_role,
        )

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("ey")

    def _decode(self, token: str) -> dict[str, Any]:
        key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            issuer=self.issuer,
            audience=self.audience,
            options={"verify_aud": self.audience is not None, "require": ["exp", "iss", "sub"]},
        )
        return claims

    async def claims(self, token: str) -> dict[str, Any]:
        """A valid JWT's claims; ``AuthenticationFailed`` (401) for any other token."""
        try:
            return await asyncio.to_thread(self._decode, token)
        except (jwt.PyJWTError, OSError) as exc:
            raise AuthenticationFailed(
                f"invalid OIDC token: {exc.__class__.__name__}", code="invalid_token"
            ) from exc

    async def verify(self, token: str) -> Principal:
        """The caller a valid JWT names; ``AuthenticationFailed`` (401) for any other."""
        claims = await self.claims(token)
        roles = _claim(claims, self.role_claim)
        if isinstance(roles, str):
            roles = roles.replace(",", " ").split()
        subject = str(claims.get("preferred_username") or claims["sub"])
        if isinstance(roles, list) and self.admin_role in roles:
            return Principal("admin", f"oidc:{subject}")
        return Principal("user", str(claims["sub"]))
