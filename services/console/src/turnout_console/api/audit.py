"""Audit log (admin): config changes filtered by actor, entity, action and a day range, with
each diff."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from turnout_console.api.usage import DayQ, ToQ, day_param
from turnout_console.deps import AdminDep, PartsDep
from turnout_console.views import fetch_page

router = APIRouter(prefix="/audit")
PAGE = 20
Str = Annotated[str | None, Query(max_length=200)]


@router.get("")
async def audit_page(
    request: Request,
    parts: PartsDep,
    session: AdminDep,
    actor: Str = None,
    entity: Str = None,
    action: Str = None,
    start: DayQ = None,
    end: ToQ = None,
    page: Annotated[int, Query(ge=1, le=100_000_000)] = 1,
) -> Response:
    since, until = day_param(start, "from"), day_param(end, "to")
    filters = {
        "actor": actor or None,
        "entity": entity or None,
        "action": action or None,
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
    }
    # a day range: from the start of the first day to the end of the last
    window = {
        "since": f"{since.isoformat()}T00:00:00Z" if since else None,
        "until": f"{until.isoformat()}T23:59:59.999999Z" if until else None,
    }
    params = {k: filters[k] for k in ("actor", "entity", "action")}
    result, rows = await fetch_page(
        parts,
        "config",
        "/api/v1/audit",
        session.credential.get_secret_value(),
        {**params, **window},
        page,
        PAGE,
    )
    ctx: dict[str, Any] = {
        "session": session,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        **rows,
        "error": None if result.ok else result.message,
    }
    return parts.templates.TemplateResponse(request, "audit.html", ctx)
