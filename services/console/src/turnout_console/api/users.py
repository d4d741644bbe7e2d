"""End-user pages (signed in with a virtual key): my usage, and what is not available yet."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from turnout_console.api.context import UserView
from turnout_console.api.my_keys import own_keys

router = APIRouter()


@router.get("/me")
async def my_page(ctx: UserView) -> Response:
    usage = await ctx.get("metering", "/api/v1/usage", limit=20)
    keys = await own_keys(ctx)
    return ctx.render(
        "me.html",
        {
            "session": ctx.session,
            "usage": usage.rows,
            "usage_error": None if usage.ok else usage.message,
            "keys": keys,
        },
    )
