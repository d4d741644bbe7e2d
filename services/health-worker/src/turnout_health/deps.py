"""Request dependencies: the running state and admin authentication."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from turnout_common.auth import bearer_token, is_bootstrap_admin, token_hash
from turnout_common.errors import AuthenticationFailed, PermissionDenied, ServiceUnavailable
from turnout_common.settings import CommonSettings
from turnout_health.registry import ConfigRegistry
from turnout_health.settings import HealthSettings


@dataclass
class AppState:
    settings: CommonSettings
    health: HealthSettings
    pool: asyncpg.Pool
    registry: ConfigRegistry


def get_state(request: Request) -> AppState:
    state: AppState | None = getattr(request.app.state, "turnout", None)
    if state is None:
        raise ServiceUnavailable("the health worker is still starting; retry in a moment")
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def require_admin(state: StateDep, authorization: Annotated[str | None, Header()] = None) -> None:
    token = bearer_token(authorization)
    if token is None:
        raise AuthenticationFailed(
            "missing admin token: send 'Authorization: Bearer <admin token>'",
            headers={"www-authenticate": "Bearer"},
        )
    if is_bootstrap_admin(token, state.settings.admin_token):
        return
    if token_hash(token) in state.registry.admin_token_hashes:
        return
    raise PermissionDenied("this token is not an admin token", code="not_admin")


AdminDep = Depends(require_admin)
