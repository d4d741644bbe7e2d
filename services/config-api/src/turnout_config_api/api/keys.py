"""``/keys``: virtual keys (admins for anyone; users for themselves)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from turnout_common.errors import PermissionDenied
from turnout_common.web import MAX_OFFSET
from turnout_config_api.changes import Actor
from turnout_config_api.deps import AdminDep, PrincipalDep, StateDep, request_id
from turnout_config_api.schemas.common import Page
from turnout_config_api.schemas.keys import KeyCreate, KeyCreated, KeyOut, KeyUpdate
from turnout_config_api.security import require_self_or_admin
from turnout_config_api.services import keys

router = APIRouter(tags=["keys"])


def _key_out(row: object) -> KeyOut:
    return KeyOut.model_validate(dict(row))  # type: ignore[call-overload]


@router.post("/keys", status_code=201, response_model=KeyCreated)
async def create_key(
    request: Request, state: StateDep, principal: PrincipalDep, body: KeyCreate
) -> KeyCreated:
    """Create a virtual key; the secret is in this answer only. Admins create keys for any
    user; a user (authorised by one of their own keys) for themselves, unless an admin turned
    self-service off (``TURNOUT_SELF_SERVICE_KEYS``), up to their tier's ``max_keys``."""
    if principal.is_admin:
        actor = Actor(principal.subject, request_id(request))
        row, secret = await keys.create(state.pool, actor, body)
    else:
        if not state.settings.self_service_keys:
            raise PermissionDenied(
                "self-service key creation is turned off here; ask an admin for a key",
                code="self_service_disabled",
            )
        require_self_or_admin(principal, body.user_id)
        actor = Actor(f"user:{principal.subject}", request_id(request))
        row, secret = await keys.create(state.pool, actor, body, self_service=True)
    return KeyCreated.model_validate({**dict(row), "key": secret})


@router.get("/keys", response_model=Page[KeyOut])
async def list_keys(
    state: StateDep,
    principal: PrincipalDep,
    user_id: str | None = None,
    include_revoked: bool = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[KeyOut]:
    if not principal.is_admin:
        user_id = principal.subject  # a user sees only its own keys
    where = "WHERE ($1::text IS NULL OR user_id = $1) AND ($2 OR NOT revoked)"
    async with state.pool.acquire() as conn:
        total = await conn.fetchval(
            f"SELECT count(*) FROM virtual_keys {where}", user_id, include_revoked
        )
        rows = await conn.fetch(
            f"SELECT * FROM virtual_keys {where} ORDER BY created_at, id LIMIT $3 OFFSET $4",
            user_id,
            include_revoked,
            limit,
            offset,
        )
    return Page(data=[_key_out(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/keys/{key_id}", response_model=KeyOut)
async def get_key(state: StateDep, principal: PrincipalDep, key_id: str) -> KeyOut:
    async with state.pool.acquire() as conn:
        row = await keys.get(conn, key_id)
    require_self_or_admin(principal, row["user_id"])
    return _key_out(row)


@router.patch("/keys/{key_id}", response_model=KeyOut)
async def update_key(state: StateDep, actor: AdminDep, key_id: str, body: KeyUpdate) -> KeyOut:
    return _key_out(await keys.update(state.pool, actor, key_id, body))


@router.delete("/keys/{key_id}", response_model=KeyOut)
async def revoke_key(
    request: Request, state: StateDep, principal: PrincipalDep, key_id: str
) -> KeyOut:
    """Revokes the key (the router refuses it as soon as the event arrives). A user may
    revoke their own keys (404 for anyone else's)."""
    if not principal.is_admin:
        async with state.pool.acquire() as conn:
            require_self_or_admin(principal, (await keys.get(conn, key_id))["user_id"])
    name = principal.subject if principal.is_admin else f"user:{principal.subject}"
    return _key_out(await keys.revoke(state.pool, Actor(name, request_id(request)), key_id))
