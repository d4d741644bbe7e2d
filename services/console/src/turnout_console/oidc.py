"""OIDC sign-in (authorization code + PKCE): discovery from the configured issuer only, the
PKCE pair, the signed flow cookie, and the token exchange. The routes are in ``api/oidc.py``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from turnout_common.errors import AuthenticationFailed
from turnout_common.oidc import OidcVerifier
from turnout_console.settings import ConsoleSettings

FLOW_COOKIE = "turnout_console_oidc"
FLOW_TTL_S = 600
CALLBACK_PATH = "/auth/oidc/callback"


class OidcError(Exception):
    """A step of the flow failed; ``str(exc)`` is safe to show (no secret, no token)."""

    status = 502
    """The provider failed or could not be reached (a gateway's failure)."""


class IdTokenRefused(OidcError):
    """The provider answered, but its ID token does not prove this sign-in (a bad signature,
    another audience, expired, or the nonce of another authorization request)."""

    status = 401


@dataclass(frozen=True, slots=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    issued_at: float

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    @classmethod
    def new(cls) -> Flow:
        return cls(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
            time.time(),
        )


class FlowSigner:
    """Signs the flow cookie with a per-process key (the sessions are per-process too)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def dump(self, flow: Flow) -> str:
        body = base64.urlsafe_b64encode(
            json.dumps([flow.state, flow.nonce, flow.verifier, flow.issued_at]).encode()
        ).decode()
        return body + "." + self._mac(body)

    def load(self, value: str | None) -> Flow | None:
        """The flow, or None when missing, tampered with or older than :data:`FLOW_TTL_S`."""
        if not value or "." not in value:
            return None
        body, mac = value.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            state, nonce, verifier, issued = json.loads(base64.urlsafe_b64decode(body))
            flow = Flow(str(state), str(nonce), str(verifier), float(issued))
        except (ValueError, TypeError):
            return None
        return flow if time.time() - flow.issued_at <= FLOW_TTL_S else None

    def _mac(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()


class OidcClient:
    """The console as an OIDC client of ``TURNOUT_OIDC_ISSUER`` (endpoints discovered once)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        assert settings.oidc_issuer and settings.console_oidc_client_id
        assert settings.console_public_url
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.console_oidc_client_id
        self.secret = settings.console_oidc_client_secret
        self.redirect_uri = settings.console_public_url.rstrip("/") + CALLBACK_PATH
        self.timeout = aiohttp.ClientTimeout(total=settings.console_api_timeout_s)
        self._endpoints: dict[str, str] | None = None
        self._verifier: OidcVerifier | None = None

    async def endpoints(self) -> dict[str, str]:
        if self._endpoints is None:
            doc = await self._get_json(self.issuer + "/.well-known/openid-configuration")
            if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
                raise OidcError("the identity provider's discovery names another issuer")
            try:
                self._endpoints = {
                    "issuer": str(doc["issuer"]),
                    "authorize": str(doc["authorization_endpoint"]),
                    "token": str(doc["token_endpoint"]),
                    "jwks": str(doc["jwks_uri"]),
                }
            except KeyError as exc:
                raise OidcError("the identity provider's discovery lacks an endpoint") from exc
        return self._endpoints

    async def authorize_url(self, flow: Flow) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": "openid profile email",
                "state": flow.state,
                "nonce": flow.nonce,
                "code_challenge": flow.challenge,
                "code_challenge_method": "S256",
            }
        )
        base = (await self.endpoints())["authorize"]
        return base + ("&" if "?" in base else "?") + query

    async def exchange(self, code: str, flow: Flow) -> str:
        """The access token for ``code``: refused unless the provider answers 200 with one
        and with an ID token for this client carrying this flow's nonce."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": flow.verifier,
        }
        if self.secret is not None:
            form["client_secret"] = self.secret.get_secret_value()
        url = (await self.endpoints())["token"]
        refused = "the identity provider refused the sign-in"
        doc = await self._json(
            "POST", url, refused, data=form, headers={"Accept": "application/json"}
        )
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise OidcError("the identity provider returned no access token")
        await self._check_id_token(doc.get("id_token"), flow)
        return token

    async def _check_id_token(self, id_token: object, flow: Flow) -> None:
        """The ID token is signed by the issuer (its JWKS), for this client, not expired, and
        carries the nonce this flow sent: a code or token from another sign-in is refused."""
        if not isinstance(id_token, str) or not id_token:
            raise IdTokenRefused("the identity provider returned no ID token")
        if self._verifier is None:
            endpoints = await self.endpoints()
            self._verifier = OidcVerifier(
                issuer=endpoints["issuer"], jwks_url=endpoints["jwks"], audience=self.client_id
            )
        try:
            claims = await self._verifier.claims(id_token)
        except AuthenticationFailed as exc:
            raise IdTokenRefused(f"the ID token is not valid ({exc.message})") from exc
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, flow.nonce):
            raise IdTokenRefused("the ID token was not issued for this sign-in (nonce mismatch)")

    async def _get_json(self, url: str) -> dict[str, Any]:
        doc = await self._json("GET", url, "the identity provider's discovery failed")
        if not isinstance(doc, dict):
            raise OidcError("the identity provider's discovery is not a JSON object")
        return doc

    async def _json(self, method: str, url: str, refused: str, **send: Any) -> Any:
        """The provider's JSON answer; anything but a 200 is "{refused} (HTTP n)"."""
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as http,
                http.request(method, url, **send) as resp,
            ):
                if resp.status != 200:
                    raise OidcError(f"{refused} (HTTP {resp.status})")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError(f"the identity provider did not answer ({type(exc).__name__})") from exc


def _claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified: only for a token a service has just accepted."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT (already verified by the service that accepted it), or None."""
    try:
        return float(_claims(token)["exp"])
    except (KeyError, TypeError, ValueError):
        return None


def token_label(token: str) -> str:
    """Who signed in, for the page header: ``preferred_username``, ``email`` or ``sub``."""
    claims = _claims(token)
    for name in ("preferred_username", "email", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return f"{value[:64]} (SSO)"
    return "admin (SSO)"
