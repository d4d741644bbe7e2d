"""Users and keys (admin): users with tier and budget, one user's keys (a new secret shown
once), revoke, credits and grants."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView, Ctx
from turnout_console.api.my_keys import create_key, revoke_key
from turnout_console.api.user_settings import CHANGED
from turnout_console.forms import Ident, Name, Number, decimal_text
from turnout_console.views import safe_segment

router = APIRouter(prefix="/users")
PAGE = 10


async def _credits(ctx: Ctx, ids: list[str]) -> dict[str, Any]:
    """This month's spend and remaining credit of each user on the page (one call each, at
    once: a page is 10 users)."""
    paths = [f"/api/v1/credits/{safe_segment(u)}" for u in ids]
    results = await asyncio.gather(*(ctx.get("metering", p) for p in paths))
    return {u: r.data for u, r in zip(ids, results, strict=True) if r.ok}


@router.get("")
async def users_page(
    ctx: AdminView, page: Annotated[int, Query(ge=1, le=100_000_000)] = 1
) -> Response:
    _, window = await ctx.paged("config", "/api/v1/users", {}, page, PAGE)
    credits = await _credits(ctx, [u["id"] for u in window["rows"]])
    return ctx.page("users.html", "partials/users_table.html", {**window, "credits": credits})


def _money(value: str, field: str, *, required: bool = False) -> str | None:
    if not value.strip() and not required:
        return None
    return decimal_text(value, field, "an amount in USD above 0", lambda n: n > 0)


@router.post("")
async def create_user(
    ctx: AdminAct,
    user_id: Ident,
    tier: Ident = "free",
    budget: Number = "",
) -> Response:
    body = {
        "id": user_id.strip(),
        "tier": tier.strip(),
        "monthly_budget_usd": _money(budget, "budget"),
    }
    return await ctx.act(
        "config",
        "POST",
        "/api/v1/users",
        lambda u: f"User {u['id']} created.",
        json=body,
        trigger="users-changed",
    )


async def _user_context(ctx: Ctx, user_id: str) -> dict[str, Any]:
    user = await ctx.get("config", f"/api/v1/users/{user_id}")
    keys = await ctx.get("config", "/api/v1/keys", user_id=user_id, limit=500)
    credits = await ctx.get("metering", f"/api/v1/credits/{user_id}")
    ledger = await ctx.get("metering", f"/api/v1/credits/{user_id}/ledger", limit=20)
    tiers = await ctx.get("config", "/api/v1/tiers")
    return {
        "tiers": tiers.data["data"] if tiers.ok else [],
        "user": user.data if user.ok else None,
        "user_error": None if user.ok else user.message,
        "keys": keys.data["data"] if keys.ok else [],
        "credits": credits.data if credits.ok else None,
        "ledger": ledger.data.get("data", []) if ledger.ok else [],
    }


@router.get("/{user_id}")
async def user_page(ctx: AdminView, user_id: str) -> Response:
    context = await _user_context(ctx, safe_segment(user_id))
    return ctx.page("user.html", "partials/user_detail.html", context)


@router.post("/{user_id}/keys")
async def new_key(
    ctx: AdminAct,
    user_id: str,
    name: Annotated[str, Form(min_length=1, max_length=100)] = "default",
) -> Response:
    return await create_key(ctx, safe_segment(user_id), name, CHANGED)


@router.post("/{user_id}/keys/{key_id}/revoke")
async def revoke(ctx: AdminAct, user_id: str, key_id: str) -> Response:
    safe_segment(user_id)
    return await revoke_key(ctx, key_id, CHANGED)


@router.post("/{user_id}/grant")
async def grant(
    ctx: AdminAct,
    user_id: str,
    amount: Number,
    reason: Name = "granted in the console",
) -> Response:
    body = {"amount_usd": _money(amount, "amount", required=True), "reason": reason}
    path = f"/api/v1/credits/{safe_segment(user_id)}/grant"
    done = f"Granted ${body['amount_usd']}."
    return await ctx.act("metering", "POST", path, done, json=body, trigger=CHANGED)
