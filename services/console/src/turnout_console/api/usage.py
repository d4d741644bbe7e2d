"""Usage and spend (admin): a chart per day, a summary by model/provider/user, the records,
CSV download. Every filter goes to metering; nothing is summed here."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from turnout_console.api.context import AdminView
from turnout_console.client import ApiResult
from turnout_console.forms import DayQ, ToQ, day_param, day_range

router = APIRouter(prefix="/usage")
PAGE = 20
GROUPS = 25
"""Groups in the table, the costliest first (10,000 users make 10,000 groups; the totals
still count them all, and the page says how many there are)."""
MIN_CHART_DAYS = 30
"""Without a From day the chart shows at least this many days, up to the last with usage."""
MAX_FILLED_DAYS = 1000
"""A chart over a longer range shows only the days with usage (no zero-filled points)."""
Str = Annotated[str | None, Query(max_length=200)]
GroupQ = Annotated[Literal["model", "provider", "user", "source"], Query()]


def _filters(
    user_id: Str = None,
    model: Str = None,
    provider: Str = None,
    start: DayQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    return {
        "user_id": user_id or None,
        "model": model or None,
        "provider": provider or None,
        "from": day_param(start, "from"),
        "to": day_param(end, "to"),
    }


FiltersDep = Annotated[dict[str, Any], Depends(_filters)]


def _records(f: dict[str, Any]) -> dict[str, Any]:
    """The filters for the records, which take datetimes: a day filter ends at the end of
    that day."""
    start, end = day_range(f["from"], f["to"])
    return {**f, "from": start, "to": end}


def day_series(
    days: ApiResult, first: str | None = None, last: str | None = None, min_days: int = 1
) -> list[dict[str, Any]]:
    """The per-day chart's points (console.js draws them) from a ``group_by=day`` summary:
    every day from ``first`` (else the earliest with usage, or ``min_days`` before ``last``
    if that is earlier) to ``last`` (else the latest with usage), a day without usage as
    zero, so the axis spans the range and a lone day is no lone dot."""
    have = {
        str(r["key"]): {
            "day": str(r["key"]),
            "requests": r["requests"],
            "tokens": r["input_tokens"] + r["output_tokens"],
            "cost": r["cost_usd"],
        }
        for r in (days.data["data"] if days.ok else [])
    }
    if not have:
        return []
    try:
        hi = date.fromisoformat(last or max(have))
        lo = date.fromisoformat(first or min(have))
        if first is None:
            lo = min(lo, hi - timedelta(days=min_days - 1))
        span = (hi - lo).days
    except ValueError:  # not days
        span = -1
    if not 0 <= span <= MAX_FILLED_DAYS:  # the points as they came
        return sorted(have.values(), key=lambda s: str(s["day"]))
    out = []
    for n in range(span + 1):
        day = (lo + timedelta(days=n)).isoformat()
        out.append(have.get(day) or {"day": day, "requests": 0, "tokens": 0, "cost": "0"})
    return out


@router.get("")
async def usage_page(
    ctx: AdminView,
    f: FiltersDep,
    group_by: GroupQ = "model",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    days, groups, (records, window) = await asyncio.gather(  # at once: independent reads
        ctx.get("metering", "/api/v1/usage/summary", **f, group_by="day"),
        ctx.get(
            "metering",
            "/api/v1/usage/summary",
            **f,
            group_by=group_by,
            sort="-cost",
            limit=GROUPS,
        ),
        ctx.paged("metering", "/api/v1/usage", _records(f), page, PAGE),
    )
    error = next((r.message for r in (days, groups, records) if not r.ok), None)
    return ctx.render(
        "usage.html",
        {
            "session": ctx.session,
            "filters": {**f, "group_by": group_by},
            "error": error,
            "series": day_series(days, f["from"], f["to"], min_days=MIN_CHART_DAYS),
            "groups": groups.data["data"] if groups.ok else [],
            "totals": groups.data["totals"] if groups.ok else None,
            "groups_total": int(groups.data.get("groups", 0)) if groups.ok else 0,
            "records": window["rows"],
            "total": window["total"],
            "query": urlencode({k: v for k, v in {**f, "group_by": group_by}.items() if v}),
            "page": window["page"],
            "pages": window["pages"],
        },
    )


@router.get("/export.csv")
async def usage_csv(ctx: AdminView, f: FiltersDep) -> Response:
    result = await ctx.get("metering", "/api/v1/usage", **_records(f), format="csv", limit=100_000)
    if not result.ok:
        return ctx.failed(result)
    return Response(
        str(result.data),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="usage.csv"'},
    )
