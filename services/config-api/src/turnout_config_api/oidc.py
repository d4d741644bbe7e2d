"""Optional OIDC (SSO, e.g. Keycloak): verify a JWT against the issuer's JWKS, read roles."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt

from turnout_common.auth import Principal
from turnout_common.errors import AuthenticationFailed


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

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("ey")

    def _decode(self, token: str) -> dict[str, Any]:
        key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
            issuer=self.issuer,
            audience=self.audience,
            options={"verify_aud": self.audience is not None, "require": ["exp", "iss", "sub"]},
        )
        return claims

    async def verify(self, token: str) -> Principal:
        try:
            claims = await asyncio.to_thread(self._decode, token)
        except (jwt.PyJWTError, OSError) as exc:
            raise AuthenticationFailed(
                f"invalid OIDC token: {exc.__class__.__name__}", code="invalid_token"
            ) from exc
        roles = _claim(claims, self.role_claim)
        if isinstance(roles, str):
            roles = roles.replace(",", " ").split()
        subject = str(claims.get("preferred_username") or claims["sub"])
        if isinstance(roles, list) and self.admin_role in roles:
            return Principal("admin", f"oidc:{subject}")
        return Principal("user", str(claims["sub"]))
