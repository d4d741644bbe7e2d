"""``/models``: the catalog, with filters, sorting and pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from turnout_common.web import MAX_OFFSET
from turnout_config_api.deps import AdminDep, AdminReadDep, StateDep
from turnout_config_api.schemas.common import Page, Purpose
from turnout_config_api.schemas.models import ModelCreate, ModelOut, ModelUpdate
from turnout_config_api.services import models
from turnout_config_api.services.models import ModelQuery

router = APIRouter(prefix="/models", tags=["models"])

Capability = Annotated[str | None, Query(pattern="^(streaming|tools|vision|json_mode)$")]
Sort = Annotated[str, Query(pattern="^-?(name|price|context_length)$")]


def model_query(
    provider: str | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    capability: Capability = None,
    purpose: Purpose | None = None,
    deprecated: bool | None = None,
    sort: Sort = "name",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ModelQuery:
    return ModelQuery(provider, search, capability, purpose, deprecated, sort, limit, offset)


ModelQueryDep = Annotated[ModelQuery, Depends(model_query)]


@router.get("", response_model=Page[ModelOut])
async def list_models(
    state: StateDep, _: AdminReadDep, q: ModelQueryDep, enabled: bool | None = None
) -> Page[ModelOut]:
    rows, total = await models.search(state.pool, q, enabled=enabled)
    return Page(data=[models.to_out(r) for r in rows], total=total, limit=q.limit, offset=q.offset)


@router.post("", status_code=201, response_model=ModelOut)
async def create_model(state: StateDep, actor: AdminDep, body: ModelCreate) -> ModelOut:
    return models.to_out(await models.create(state.pool, actor, body))


@router.get("/{model_id}", response_model=ModelOut)
async def get_model(state: StateDep, _: AdminReadDep, model_id: str) -> ModelOut:
    async with state.pool.acquire() as conn:
        return models.to_out(await models.get(conn, model_id))


@router.patch("/{model_id}", response_model=ModelOut)
async def update_model(
    state: StateDep, actor: AdminDep, model_id: str, body: ModelUpdate
) -> ModelOut:
    return models.to_out(await models.update(state.pool, actor, model_id, body))


@router.delete("/{model_id}", status_code=204)
async def delete_model(state: StateDep, actor: AdminDep, model_id: str) -> Response:
    await models.delete(state.pool, actor, model_id)
    return Response(status_code=204)
