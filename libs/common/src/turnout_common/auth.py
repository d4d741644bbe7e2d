"""Bearer-token checks shared by the admin-plane services.

Admins: the bootstrap token (``TURNOUT_ADMIN_TOKEN``), tokens minted through config-api
(their SHA-256 hashes arrive as ``admin_token`` config entities), or an OIDC JWT with the
admin role (:mod:`turnout_common.oidc`). Users: a virtual key whose
hash the service knows from config events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from turnout_common.crypto import constant_time_equals, hash_virtual_key
from turnout_common.errors import AuthenticationFailed

if TYPE_CHECKING:
    from turnout_common.oidc import OidcVerifier


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["admin", "user"]
    subject: str
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_bootstrap_admin(token: str, admin_token: SecretStr | None) -> bool:
    return admin_token is not None and constant_time_equals(token, admin_token.get_secret_value())


def token_hash(token: str) -> str:
    """Hash used for minted admin tokens and virtual keys alike."""
    return hash_virtual_key(token)


async def authenticate(
    authorization: str | None,
    admin_token: SecretStr | None,
    oidc: OidcVerifier | None,
    by_hash: Callable[[str], Awaitable[Principal | None]],
) -> Principal:
    """Who sends ``Authorization: Bearer <token>``: no token is 401 ``missing_token``; the
    bootstrap admin token is the bootstrap admin; a JWT is verified by ``oidc`` (SSO, when
    on); any other token is looked up by its hash (``by_hash``: the minted admin tokens and
    virtual keys the service knows), and one it does not know is 401 ``invalid_token``."""
    token = bearer_token(authorization)
    if token is None:
        raise AuthenticationFailed(
            "missing credentials: send 'Authorization: Bearer <admin token or virtual key>'",
            code="missing_token",
        )
    if is_bootstrap_admin(token, admin_token):
        return Principal("admin", "bootstrap")
    if oidc is not None and oidc.looks_like_jwt(token):
        return await oidc.verify(token)
    principal = await by_hash(token_hash(token))
    if principal is None:
        raise AuthenticationFailed("invalid, revoked or expired token", code="invalid_token")
    return principal
