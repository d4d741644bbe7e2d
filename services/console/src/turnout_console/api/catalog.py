"""The model catalog (end users and admins, seed 002): the enabled models the caller's tier
may use, with prices per 1M tokens, context window, capabilities and deprecation; filters,
sort and 10 a page, all done by config-api's ``GET /catalog``; a cost calculator."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from turnout_console.deps import PartsDep, SessionDep
from turnout_console.views import fetch_page

router = APIRouter(prefix="/catalog")
PAGE = 10
Str = Annotated[str, Query(max_length=200)]
SortQ = Annotated[str, Query(pattern="^-?(name|price|context_length)$")]
PurposeQ = Annotated[Literal["", "chat", "completion", "embeddings", "reranking"], Query()]
CapQ = Annotated[Literal["", "streaming", "tools", "vision", "json_mode"], Query()]
BoolQ = Annotated[Literal["", "true", "false"], Query()]


@router.get("")
async def catalog_page(
    request: Request,
    parts: PartsDep,
    session: SessionDep,
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
    result, window = await fetch_page(
        parts,
        "config",
        "/api/v1/catalog",
        session.credential.get_secret_value(),
        filters,
        page,
        PAGE,
    )
    ctx: dict[str, Any] = {
        "session": session,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        **window,
        "error": None,
        "missing": result.status in (404, 405),
    }
    if not result.ok and not ctx["missing"]:
        ctx["error"] = result.message
    return parts.templates.TemplateResponse(request, "catalog.html", ctx)
