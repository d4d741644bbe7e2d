"""Bearer-token checks shared by the admin-plane services.

Admins: the bootstrap token (``TURNOUT_ADMIN_TOKEN``), tokens minted through config-api
(their SHA-256 hashes arrive as ``admin_token`` config entities), or an OIDC JWT with the
admin role (:mod:`turnout_common.oidc`). Users: a virtual key whose
hash the service knows from config events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from turnout_common.crypto import constant_time_equals, hash_virtual_key


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
