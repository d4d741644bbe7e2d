"""FastAPI dependencies: app state, the caller, the acting admin, pool access."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Request

from turnout_common.auth import Principal
from turnout_config_api.changes import Actor
from turnout_config_api.security import authenticate, require_admin
from turnout_config_api.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.config_api
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_principal(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    return await authenticate(state, authorization)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def request_id(request: Request) -> str:
    rid: str | None = getattr(request.state, "request_id", None)
    return rid or request.headers.get("x-request-id") or uuid.uuid4().hex


async def get_admin_actor(request: Request, principal: PrincipalDep) -> Actor:
    require_admin(principal)
    return Actor(principal.subject, request_id(request))


AdminDep = Annotated[Actor, Depends(get_admin_actor)]


async def get_admin(principal: PrincipalDep) -> Principal:
    return require_admin(principal)


AdminReadDep = Annotated[Principal, Depends(get_admin)]
