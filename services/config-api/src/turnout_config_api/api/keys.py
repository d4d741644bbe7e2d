"""``/keys`` (virtual keys) and ``/users/{id}/provider-keys`` (BYOK)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from turnout_common.errors import PermissionDenied
from turnout_common.web import MAX_OFFSET
from turnout_config_api.changes import Actor
from turnout_config_api.deps import AdminDep, PrincipalDep, StateDep, request_id
from turnout_config_api.schemas.common import Page
from turnout_config_api.schemas.keys import (
    ByokOut,
    ByokPut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyUpdate,
)
from turnout_config_api.schemas.providers import ProbeResult
from turnout_config_api.security import require_self_or_admin
from turnout_config_api.services import byok, discovery, keys

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


@router.get("/users/{user_id}/provider-keys", response_model=Page[ByokOut])
async def list_byok(state: StateDep, principal: PrincipalDep, user_id: str) -> Page[ByokOut]:
    require_self_or_admin(principal, user_id)
    rows = await byok.list_for(state.pool, user_id)
    return Page[ByokOut].whole([ByokOut.model_validate(dict(r)) for r in rows])


@router.get("/users/{user_id}/provider-keys/{provider}", response_model=ByokOut)
async def get_byok(
    state: StateDep, principal: PrincipalDep, user_id: str, provider: str
) -> ByokOut:
    require_self_or_admin(principal, user_id)
    async with state.pool.acquire() as conn:
        return ByokOut.model_validate(dict(await byok.get(conn, user_id, provider)))


@router.put("/users/{user_id}/provider-keys/{provider}", response_model=ByokOut)
async def put_byok(
    state: StateDep, actor: AdminDep, user_id: str, provider: str, body: ByokPut
) -> ByokOut:
    row = await byok.put(
        state.pool, state.ring, actor, user_id, provider, body.api_key.get_secret_value()
    )
    return ByokOut.model_validate(dict(row))


@router.delete("/users/{user_id}/provider-keys/{provider}", status_code=204)
async def delete_byok(state: StateDep, actor: AdminDep, user_id: str, provider: str) -> Response:
    await byok.delete(state.pool, actor, user_id, provider)
    return Response(status_code=204)


@router.post("/users/{user_id}/provider-keys/{provider}/test", response_model=ProbeResult)
async def probe_byok(state: StateDep, _: AdminDep, user_id: str, provider: str) -> ProbeResult:
    async with state.pool.acquire() as conn:
        row = await byok.get(conn, user_id, provider)
    secret = state.ring.decrypt(row["api_key_encrypted"])
    prov, result = await discovery.check_provider(
        state.pool,
        state.ring,
        state.http,
        row["provider_id"],
        state.settings.probe_timeout_s,
        key=secret,
    )
    return ProbeResult(provider=prov["name"], kind=prov["kind"], **result.__dict__)
