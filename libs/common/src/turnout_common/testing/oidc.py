"""A local OIDC issuer for tests: signs JWTs with its own RSA key and serves the JWKS over
real HTTP (``LocalServer``), so ``turnout_common.oidc.OidcVerifier`` runs unpatched."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
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


class OidcProvider(Jwks):
    """A whole local identity provider for sign-in tests: discovery, ``/authorize`` (which
    checks the PKCE parameters and redirects straight back with a code for ``next_roles``),
    ``/token`` (which checks the ``code_verifier`` against the challenge) and ``/certs``.

    Its issuer is its own URL, so discovery at ``{issuer}/.well-known/openid-configuration``
    works as with a real provider. ``deny = True`` makes ``/authorize`` answer
    ``error=access_denied``; ``id_nonce`` set puts that nonce in the ID token instead of the
    one the authorization request sent (a replayed or forged ID token)."""

    def __init__(self, client_id: str, audience: str = AUDIENCE) -> None:
        super().__init__("", audience)
        self.issuer = self.server.url
        self.client_id = client_id
        self.next_roles: list[str] = ["admin"]
        self.deny = False
        self.id_nonce: str | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []

    def _app(self) -> web.Application:
        app = super()._app()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        return app

    async def _discovery(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": self.jwks_url,
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        problems = [
            name
            for name, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == self.client_id),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
                ("code_challenge", len(q.get("code_challenge", "")) == 43),
                ("state", bool(q.get("state"))),
                ("nonce", bool(q.get("nonce"))),
                ("redirect_uri", q.get("redirect_uri", "").startswith("http")),
            )
            if not ok
        ]
        if problems:
            return web.Response(status=400, text="bad authorize request: " + ", ".join(problems))
        back = q["redirect_uri"]
        if self.deny:
            raise web.HTTPFound(f"{back}?error=access_denied&state={q['state']}")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": back,
            "roles": list(self.next_roles),
            "nonce": q["nonce"],
        }
        raise web.HTTPFound(f"{back}?code={code}&state={q['state']}")

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return web.json_response({"error": "invalid_grant"}, status=400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            challenge != grant["challenge"]
            or form.get("redirect_uri") != grant["redirect_uri"]
            or form.get("client_id") != self.client_id
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        id_token = self.token(
            [],
            aud=self.client_id,
            nonce=self.id_nonce or grant["nonce"],
            auth_time=int(time.time()),
        )
        return web.json_response(
            {
                "access_token": self.token(grant["roles"]),
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": 300,
            }
        )
