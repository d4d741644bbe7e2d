"""A local OIDC issuer for tests: signs JWTs with its own RSA key and serves the JWKS over
real HTTP (``LocalServer``), so ``turnout_common.oidc.OidcVerifier`` runs unpatched."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from turnout_common.testing.servers import LocalServer

ISSUER = "https://sso.test/realms/turnout"
AUDIENCE = "turnout-admin"


class Jwks:
    """``with Jwks() as sso: sso.token(["admin"])``; ``sso.jwks_url`` serves the key set."""

    def __init__(self, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.issuer = issuer
        self.audience = audience
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid="test-key", use="sig", alg="RS256")
        self.jwks = {"keys": [jwk]}
        self.server = LocalServer(self._app)

    def _app(self) -> web.Application:
        app = web.Application()

        async def jwks(_: web.Request) -> web.Response:
            return web.json_response(self.jwks)

        app.router.add_get("/certs", jwks)
        return app

    @property
    def jwks_url(self) -> str:
        return f"{self.server.url}/certs"

    def settings(self) -> dict[str, str]:
        """The ``oidc_*`` settings (also ``TURNOUT_OIDC_*`` upper-cased) that trust this issuer."""
        return {
            "oidc_issuer": self.issuer,
            "oidc_audience": self.audience,
            "oidc_jwks_url": self.jwks_url,
        }

    def token(self, roles: list[str], sub: str = "sso-user", **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "roles": roles,
            **claims,
        }
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers={"kid": "test-key"})

    def forged(self, roles: list[str], sub: str = "sso-user") -> str:
        """A well-formed token for this issuer signed with another key (bad signature)."""
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        claims = jwt.decode(self.token(roles, sub), options={"verify_signature": False})
        return jwt.encode(claims, other, algorithm="RS256", headers={"kid": "test-key"})

    def __enter__(self) -> Jwks:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
