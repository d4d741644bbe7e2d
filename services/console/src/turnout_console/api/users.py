"""End-user pages (signed in with a virtual key): my usage (this month's credits, a chart of
the last 30 days, the recent requests) and my keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from turnout_console.api.context import Ctx, UserView
from turnout_console.api.my_keys import own_keys
from turnout_console.api.usage import day_series
from turnout_console.views import safe_segment

router = APIRouter()


CHART_DAYS = 30


async def _credits(ctx: Ctx) -> tuple[dict[str, Any] | None, str | None]:
    """This month's budget, spend and prepaid balance (metering), or why not."""
    if not ctx.session.user_id:  # a key of no user has no credits
        return None, None
    result = await ctx.get("metering", f"/api/v1/credits/{safe_segment(ctx.session.user_id)}")
    return (result.data, None) if result.ok else (None, result.message)


@router.get("/me")
async def my_page(ctx: UserView) -> Response:
    since = (datetime.now(UTC).date() - timedelta(days=CHART_DAYS - 1)).isoformat()
    usage, keys, (credits, credits_error), days = await asyncio.gather(  # at once
        ctx.get("metering", "/api/v1/usage", limit=20),
        own_keys(ctx),
        _credits(ctx),
        ctx.get("metering", "/api/v1/usage/summary", group_by="day", **{"from": since}),
    )
    return ctx.render(
        "me.html",
        {
            "session": ctx.session,
            "usage": usage.rows,
            "usage_error": None if usage.ok else usage.message,
            "keys": keys,
            "credits": credits,
            "credits_error": credits_error,
            "series": day_series(days, since, datetime.now(UTC).date().isoformat()),
            "chart_days": CHART_DAYS,
        },
    )
