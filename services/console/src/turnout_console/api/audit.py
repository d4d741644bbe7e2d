"""Audit log (admin): config changes filtered by actor, entity, action and a day range, with
each diff."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from turnout_console.api.context import AdminView
from turnout_console.forms import DayQ, ToQ, day_param, day_range
from turnout_console.views import filter_state

router = APIRouter(prefix="/audit")
PAGE = 20
Str = Annotated[str | None, Query(max_length=200)]


def _filters(
    actor: Str = None, entity: Str = None, action: Str = None, start: DayQ = None, end: ToQ = None
) -> dict[str, Any]:
    return {
        "actor": actor or None,
        "entity": entity or None,
        "action": action or None,
        "from": day_param(start, "from"),
        "to": day_param(end, "to"),
    }


@router.get("")
async def audit_page(
    ctx: AdminView,
    filters: Annotated[dict[str, Any], Depends(_filters)],
    page: Annotated[int, Query(ge=1, le=100_000_000)] = 1,
) -> Response:
    since, until = day_range(filters["from"], filters["to"])
    params = {k: filters[k] for k in ("actor", "entity", "action")}
    _, window = await ctx.paged(
        "config", "/api/v1/audit", {**params, "since": since, "until": until}, page, PAGE
    )
    return ctx.render("audit.html", {"session": ctx.session, **filter_state(filters), **window})
