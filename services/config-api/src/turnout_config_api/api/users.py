"""``/users`` and ``/tiers``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from turnout_common.web import MAX_OFFSET
from turnout_config_api.deps import AdminDep, AdminReadDep, StateDep
from turnout_config_api.schemas.common import Page
from turnout_config_api.schemas.users import TierOut, TierPut, UserCreate, UserOut, UserUpdate
from turnout_config_api.services import users

router = APIRouter(tags=["users"])


@router.get("/users", response_model=Page[UserOut])
async def list_users(
    state: StateDep,
    _: AdminReadDep,
    tier: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[UserOut]:
    async with state.pool.acquire() as conn:
        total = await conn.fetchval(
            "SELECT count(*) FROM users WHERE $1::text IS NULL OR tier = $1", tier
        )
        rows = await conn.fetch(
            "SELECT * FROM users WHERE $1::text IS NULL OR tier = $1 ORDER BY id"
            " LIMIT $2 OFFSET $3",
            tier,
            limit,
            offset,
        )
    return Page(
        data=[UserOut.model_validate(dict(r)) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post("/users", status_code=201, response_model=UserOut)
async def create_user(state: StateDep, actor: AdminDep, body: UserCreate) -> UserOut:
    return UserOut.model_validate(dict(await users.create(state.pool, actor, body)))


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(state: StateDep, _: AdminReadDep, user_id: str) -> UserOut:
    async with state.pool.acquire() as conn:
        return UserOut.model_validate(dict(await users.get(conn, user_id)))


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(state: StateDep, actor: AdminDep, user_id: str, body: UserUpdate) -> UserOut:
    return UserOut.model_validate(dict(await users.update(state.pool, actor, user_id, body)))


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(state: StateDep, actor: AdminDep, user_id: str) -> Response:
    await users.delete(state.pool, actor, user_id)
    return Response(status_code=204)


@router.get("/tiers", response_model=Page[TierOut])
async def list_tiers(state: StateDep, _: AdminReadDep) -> Page[TierOut]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM tiers ORDER BY rank, name")
    return Page[TierOut].whole([TierOut.model_validate(dict(r)) for r in rows])


@router.put("/tiers/{name}", response_model=TierOut)
async def put_tier(
    state: StateDep,
    actor: AdminDep,
    name: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")],
    body: TierPut,
) -> TierOut:
    return TierOut.model_validate(dict(await users.put_tier(state.pool, actor, name, body)))
