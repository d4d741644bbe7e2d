"""``/catalog``: the model catalog as an end user sees it (seed 002's public catalog)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from turnout_common.errors import PermissionDenied
from turnout_config_api.api.models import ModelQueryDep
from turnout_config_api.deps import PrincipalDep, StateDep
from turnout_config_api.schemas.common import Page, TierName
from turnout_config_api.schemas.models import CatalogEntry
from turnout_config_api.services import models, users

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("", response_model=Page[CatalogEntry])
async def catalog(
    state: StateDep,
    principal: PrincipalDep,
    q: ModelQueryDep,
    tier: Annotated[
        TierName | None, Query(description="admins only: the catalog of this tier")
    ] = None,
) -> Page[CatalogEntry]:
    """The enabled models the caller's tier may use, with prices in USD per 1M tokens, context
    window, capabilities, purposes and deprecation; filters, sort (``name``, ``price``,
    ``context_length``, ``-`` for descending) and pagination as on ``GET /models``. Any
    virtual key may read it; an admin sees every tier's models, or one tier's with ``tier``."""
    if not principal.is_admin:
        if tier is not None:
            raise PermissionDenied("only an admin may read another tier's catalog", param="tier")
        async with state.pool.acquire() as conn:
            tier = (await users.get(conn, principal.subject))["tier"]
    rows, total = await models.search(state.pool, q, enabled=True, tier=tier)
    return Page(
        data=[CatalogEntry.model_validate(models.to_out(r).model_dump()) for r in rows],
        total=total,
        limit=q.limit,
        offset=q.offset,
    )
