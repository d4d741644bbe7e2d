"""``/catalog``: the model catalog as an end user sees it (seed 002's public catalog)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from turnout_common.errors import PermissionDenied
from turnout_common.web import MAX_OFFSET
from turnout_config_api.api.models import Capability, Sort
from turnout_config_api.deps import PrincipalDep, StateDep
from turnout_config_api.schemas.common import Page, Purpose, TierName
from turnout_config_api.schemas.models import CatalogEntry
from turnout_config_api.services import models, users

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("", response_model=Page[CatalogEntry])
async def catalog(
    state: StateDep,
    principal: PrincipalDep,
    provider: str | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    capability: Capability = None,
    purpose: Purpose | None = None,
    deprecated: bool | None = None,
    tier: Annotated[
        TierName | None, Query(description="admins only: the catalog of this tier")
    ] = None,
    sort: Sort = "name",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
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
    rows, total = await models.search(
        state.pool,
        provider=provider,
        search=search,
        capability=capability,
        purpose=purpose,
        enabled=True,
        deprecated=deprecated,
        tier=tier,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return Page(
        data=[CatalogEntry.model_validate(models.to_out(r).model_dump()) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
