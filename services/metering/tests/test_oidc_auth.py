"""OIDC (SSO) admin auth: a JWT from the configured issuer, checked against its real JWKS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from turnout_common.testing.oidc import Jwks
from turnout_metering.app import create_app
from turnout_metering.runtime import Runtime

from .conftest import ALICE_KEY


@pytest.fixture(scope="module")
def sso() -> Iterator[Jwks]:
    with Jwks() as jwks:
        yield jwks


@pytest.fixture
async def client(
    runtime: Runtime, sso: Jwks, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    for name, value in sso.settings().items():
        monkeypatch.setenv(f"TURNOUT_{name.upper()}", value)  # as a deployment sets them
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metering") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_oidc_admin_auth(client: httpx.AsyncClient, sso: Jwks) -> None:
    grant = {"amount_usd": "2.5", "reason": "sso grant"}
    admin = bearer(sso.token(["admin"], sub="sso-admin"))
    r = await client.post("/api/v1/credits/alice/grant", headers=admin, json=grant)
    assert r.status_code == 201, r.text
    r = await client.get("/api/v1/credits/alice", headers=admin)
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/usage", headers=admin)).status_code == 200
    # a valid JWT without the admin role is a user: not an admin (403), only its own data
    viewer = bearer(sso.token(["viewer"], sub="carol"))
    r = await client.post("/api/v1/credits/alice/grant", headers=viewer, json=grant)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert (await client.get("/api/v1/credits/alice", headers=viewer)).status_code == 404
    # a bad signature, a foreign issuer or an expired token: 401
    for bad in (
        sso.forged(["admin"]),
        sso.token(["admin"], iss="https://evil.example"),
        sso.token(["admin"], exp=1000),
    ):
        r = await client.post("/api/v1/credits/alice/grant", headers=bearer(bad), json=grant)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "invalid_token"
    # virtual keys and unknown tokens keep working / failing as before
    assert (await client.get("/api/v1/credits/alice", headers=bearer(ALICE_KEY))).status_code == 200
    assert (await client.get("/api/v1/usage", headers=bearer("nope"))).status_code == 401
