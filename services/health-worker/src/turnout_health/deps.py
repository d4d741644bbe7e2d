"""Request dependencies: the running state and admin authentication."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from turnout_common.auth import Principal, bearer_token, is_bootstrap_admin, token_hash
from turnout_common.errors import AuthenticationFailed, PermissionDenied, ServiceUnavailable
from turnout_common.oidc import OidcVerifier
from turnout_common.settings import CommonSettings
from turnout_health.registry import ConfigRegistry
from turnout_health.settings import HealthSettings


@dataclass
class AppState:
    settings: CommonSettings
    health: HealthSettings
    pool: asyncpg.Pool
    registry: ConfigRegistry
    oidc: OidcVerifier | None = None


def get_state(request: Request) -> AppState:
    state: AppState | None = getattr(request.app.state, "turnout", None)
    if state is None:
        raise ServiceUnavailable("the health worker is still starting; retry in a moment")
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def require_admin(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """Admins only: the bootstrap token, a minted admin token, or an OIDC JWT with the admin
    role. An unknown, revoked or invalid credential is 401; a valid non-admin JWT is 403."""
    token = bearer_token(authorization)
    if token is None:
        raise AuthenticationFailed(
            "missing admin token: send 'Authorization: Bearer <admin token>'",
            code="missing_token",
            headers={"www-authenticate": "Bearer"},
        )
    if is_bootstrap_admin(token, state.settings.admin_token):
        return Principal("admin", "bootstrap")
    if state.oidc is not None and state.oidc.looks_like_jwt(token):
        principal = await state.oidc.verify(token)
        if not principal.is_admin:
            raise PermissionDenied(
                "this OIDC token lacks the admin role; the health API is for admins only",
                code="not_admin",
            )
        return principal
    if token_hash(token) in state.registry.admin_token_hashes:
        return Principal("admin", "admin-token")
    raise AuthenticationFailed(
        "invalid, revoked or expired admin token",
        code="invalid_token",
        headers={"www-authenticate": "Bearer"},
    )


AdminDep = Depends(require_admin)
