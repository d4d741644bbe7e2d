"""Admin tokens, the audit log, the config snapshot and testing-lab templates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from turnout_common.web import MAX_OFFSET
from turnout_config_api import lab
from turnout_config_api.deps import AdminDep, AdminReadDep, PrincipalDep, StateDep
from turnout_config_api.schemas.common import Page
from turnout_config_api.schemas.keys import AdminTokenCreate, AdminTokenCreated, AdminTokenOut
from turnout_config_api.services import audit, keys, snapshot

router = APIRouter(tags=["admin"])


@router.post("/admin-tokens", status_code=201, response_model=AdminTokenCreated)
async def mint_admin_token(
    state: StateDep, actor: AdminDep, body: AdminTokenCreate
) -> AdminTokenCreated:
    row, secret = await keys.mint_admin_token(state.pool, actor, body)
    return AdminTokenCreated.model_validate({**dict(row), "token": secret})


@router.get("/admin-tokens", response_model=Page[AdminTokenOut])
async def list_admin_tokens(state: StateDep, _: AdminReadDep) -> Page[AdminTokenOut]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM admin_tokens ORDER BY created_at, id")
    return Page[AdminTokenOut].whole([AdminTokenOut.model_validate(dict(r)) for r in rows])


@router.delete("/admin-tokens/{token_id}", response_model=AdminTokenOut)
async def revoke_admin_token(state: StateDep, actor: AdminDep, token_id: str) -> AdminTokenOut:
    return AdminTokenOut.model_validate(
        dict(await keys.revoke_admin_token(state.pool, actor, token_id))
    )


@router.get("/audit")
async def list_audit(
    state: StateDep,
    _: AdminReadDep,
    actor: str | None = None,
    action: str | None = None,
    entity: str | None = None,
    entity_id: str | None = None,
    request_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    filters = {
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "request_id": request_id,
    }
    rows, total = await audit.search(
        state.pool, filters=filters, since=since, until=until, limit=limit, offset=offset
    )
    return {"data": [dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/snapshot")
async def get_snapshot(state: StateDep, _: AdminReadDep) -> dict[str, Any]:
    """Every entity in its ``turnout.config.v1`` data shape plus the current revision."""
    return await snapshot.snapshot(state.pool)


@router.get("/config/snapshot", include_in_schema=False)
async def get_snapshot_alias(state: StateDep, _: AdminReadDep) -> dict[str, Any]:
    return await snapshot.snapshot(state.pool)


@router.get("/lab/templates")
async def lab_templates(state: StateDep, _: PrincipalDep) -> Page[dict[str, Any]]:
    """The testing lab's prompt templates, in the list envelope; any admin token or virtual
    key may read them."""
    return Page[dict[str, Any]].whole(await lab.templates(state.pool))
