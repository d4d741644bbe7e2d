"""The model catalog (end users and admins, seed 002): the enabled models the caller's tier
may use, with prices per 1M tokens, context window, capabilities and deprecation; filters,
sort and 10 a page, all done by config-api's ``GET /catalog``; a cost calculator."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from turnout_console.api.context import UserView
from turnout_console.views import filter_state

router = APIRouter(prefix="/catalog")
PAGE = 10
Str = Annotated[str, Query(max_length=200)]
SortQ = Annotated[str, Query(pattern="^-?(name|price|context_length)$")]
PurposeQ = Annotated[Literal["", "chat", "completion", "embeddings", "reranking"], Query()]
CapQ = Annotated[Literal["", "streaming", "tools", "vision", "json_mode"], Query()]
BoolQ = Annotated[Literal["", "true", "false"], Query()]


@router.get("")
async def catalog_page(
    ctx: UserView,
    search: Str = "",
    purpose: PurposeQ = "",
    capability: CapQ = "",
    deprecated: BoolQ = "",
    sort: SortQ = "name",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    filters = {
        "search": search.strip(),
        "purpose": purpose,
        "capability": capability,
        "deprecated": deprecated,
        "sort": sort,
    }
    result, window = await ctx.paged("config", "/api/v1/catalog", filters, page, PAGE)
    missing = result.status in (404, 405)
    if missing:  # not an error: the page says the gateway does not offer it
        window["error"] = None
    context = {"session": ctx.session, **filter_state(filters), **window, "missing": missing}
    return ctx.render("catalog.html", context)
