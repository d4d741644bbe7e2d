"""``/routes`` (per purpose) and ``/routing-rules``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from turnout_common.errors import NotFound
from turnout_config_api.deps import AdminDep, AdminReadDep, StateDep
from turnout_config_api.schemas.common import Page, Purpose
from turnout_config_api.schemas.routing import RouteOut, RoutePut, RuleCreate, RuleOut, RuleUpdate
from turnout_config_api.services import routing

router = APIRouter(tags=["routing"])


@router.get("/routes", response_model=Page[RouteOut])
async def list_routes(state: StateDep, _: AdminReadDep) -> Page[RouteOut]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM routes ORDER BY purpose")
    return Page[RouteOut].whole([RouteOut.model_validate(dict(r)) for r in rows])


@router.get("/routes/{purpose}", response_model=RouteOut)
async def get_route(state: StateDep, _: AdminReadDep, purpose: Purpose) -> RouteOut:
    async with state.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM routes WHERE purpose = $1", purpose)
    if row is None:
        raise NotFound(
            f"no route for purpose {purpose!r}; set one with PUT /api/v1/routes/{purpose}"
        )
    return RouteOut.model_validate(dict(row))


@router.put("/routes/{purpose}", response_model=RouteOut)
async def put_route(state: StateDep, actor: AdminDep, purpose: Purpose, body: RoutePut) -> RouteOut:
    return RouteOut.model_validate(dict(await routing.put_route(state.pool, actor, purpose, body)))


@router.delete("/routes/{purpose}", status_code=204)
async def delete_route(state: StateDep, actor: AdminDep, purpose: Purpose) -> Response:
    await routing.delete_route(state.pool, actor, purpose)
    return Response(status_code=204)


@router.get("/routing-rules", response_model=Page[RuleOut])
async def list_rules(state: StateDep, _: AdminReadDep) -> Page[RuleOut]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM routing_rules ORDER BY priority, name")
    return Page[RuleOut].whole([RuleOut.model_validate(dict(r)) for r in rows])


@router.post("/routing-rules", status_code=201, response_model=RuleOut)
async def create_rule(state: StateDep, actor: AdminDep, body: RuleCreate) -> RuleOut:
    return RuleOut.model_validate(dict(await routing.create_rule(state.pool, actor, body)))


@router.get("/routing-rules/{ref}", response_model=RuleOut)
async def get_rule(state: StateDep, _: AdminReadDep, ref: str) -> RuleOut:
    async with state.pool.acquire() as conn:
        return RuleOut.model_validate(dict(await routing.get_rule(conn, ref)))


@router.patch("/routing-rules/{ref}", response_model=RuleOut)
async def update_rule(state: StateDep, actor: AdminDep, ref: str, body: RuleUpdate) -> RuleOut:
    return RuleOut.model_validate(dict(await routing.update_rule(state.pool, actor, ref, body)))


@router.delete("/routing-rules/{ref}", status_code=204)
async def delete_rule(state: StateDep, actor: AdminDep, ref: str) -> Response:
    await routing.delete_rule(state.pool, actor, ref)
    return Response(status_code=204)
