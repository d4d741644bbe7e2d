"""Usage and spend (admin): a chart per day, a summary by model/provider/user, the records,
CSV download. Every filter goes to metering; nothing is summed here."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from turnout_common.errors import ValidationFailed
from turnout_console.api.context import AdminView
from turnout_console.deps import AdminDep, PartsDep
from turnout_console.views import fetch_page

router = APIRouter(prefix="/usage")
PAGE = 20
Str = Annotated[str | None, Query(max_length=200)]
GroupQ = Annotated[Literal["model", "provider", "user", "source"], Query()]


DayQ = Annotated[str | None, Query(alias="from", max_length=10)]
ToQ = Annotated[str | None, Query(alias="to", max_length=10)]


def day_param(value: str | None, name: str) -> date | None:
    """A date field left blank is no filter; anything else must be YYYY-MM-DD."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{name}: a day as YYYY-MM-DD", param=name) from None


def _filters(
    user_id: str | None,
    model: str | None,
    provider: str | None,
    start_s: str | None,
    end_s: str | None,
) -> dict[str, Any]:
    start, end = day_param(start_s, "from"), day_param(end_s, "to")
    return {
        "user_id": user_id or None,
        "model": model or None,
        "provider": provider or None,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
    }


@router.get("")
async def usage_page(
    request: Request,
    parts: PartsDep,
    session: AdminDep,
    user_id: Str = None,
    model: Str = None,
    provider: Str = None,
    start: DayQ = None,
    end: ToQ = None,
    group_by: GroupQ = "model",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    cred = session.credential.get_secret_value()
    f = _filters(user_id, model, provider, start, end)
    call = parts.client.call
    # records take datetimes: a day filter ends at the end of that day
    rec_f = {
        **f,
        "from": f["from"] and f["from"] + "T00:00:00Z",
        "to": f["to"] and f["to"] + "T23:59:59.999999Z",
    }
    days, groups, (records, window) = await asyncio.gather(  # at once: independent reads
        call("metering", "GET", "/api/v1/usage/summary", cred, params={**f, "group_by": "day"}),
        call("metering", "GET", "/api/v1/usage/summary", cred, params={**f, "group_by": group_by}),
        fetch_page(parts, "metering", "/api/v1/usage", cred, rec_f, page, PAGE),
    )
    error = next((r.message for r in (days, groups, records) if not r.ok), None)
    series = [
        {
            "day": r["key"],
            "requests": r["requests"],
            "tokens": r["input_tokens"] + r["output_tokens"],
            "cost": r["cost_usd"],
        }
        for r in (days.data["data"] if days.ok else [])
    ]
    return parts.templates.TemplateResponse(
        request,
        "usage.html",
        {
            "session": session,
            "filters": {**f, "group_by": group_by},
            "error": error,
            "series": sorted(series, key=lambda s: str(s["day"])),
            "groups": groups.data["data"] if groups.ok else [],
            "totals": groups.data["totals"] if groups.ok else None,
            "records": window["rows"],
            "total": window["total"],
            "query": request.url.query,
            "page": window["page"],
            "pages": window["pages"],
        },
    )


@router.get("/export.csv")
async def usage_csv(
    ctx: AdminView,
    user_id: Str = None,
    model: Str = None,
    provider: Str = None,
    start: DayQ = None,
    end: ToQ = None,
) -> Response:
    f = _filters(user_id, model, provider, start, end)
    f["from"] = f["from"] and f["from"] + "T00:00:00Z"
    f["to"] = f["to"] and f["to"] + "T23:59:59.999999Z"
    result = await ctx.get("metering", "/api/v1/usage", **f, format="csv", limit=100_000)
    if not result.ok:
        return ctx.failed(result)
    return Response(
        str(result.data),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="usage.csv"'},
    )
