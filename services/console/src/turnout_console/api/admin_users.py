"""Users and keys (admin): users with tier and budget, one user's keys (a new secret shown
once), revoke, credits and grants."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from turnout_common.errors import ValidationFailed
from turnout_console.api.context import AdminAct
from turnout_console.api.my_keys import create_key, revoke_key
from turnout_console.api.user_settings import CHANGED
from turnout_console.deps import AdminDep, PartsDep
from turnout_console.views import fetch_page, safe_segment

router = APIRouter(prefix="/users")
PAGE = 10


async def _credits(parts: PartsDep, cred: str, ids: list[str]) -> dict[str, Any]:
    """This month's spend and remaining credit of each user on the page (one call each, at
    once: a page is 10 users)."""
    results = await asyncio.gather(
        *(
            parts.client.call("metering", "GET", f"/api/v1/credits/{safe_segment(u)}", cred)
            for u in ids
        )
    )
    return {u: r.data for u, r in zip(ids, results, strict=True) if r.ok}


@router.get("")
async def users_page(
    request: Request,
    parts: PartsDep,
    session: AdminDep,
    page: Annotated[int, Query(ge=1, le=100_000_000)] = 1,
) -> Response:
    cred = session.credential.get_secret_value()
    result, window = await fetch_page(parts, "config", "/api/v1/users", cred, {}, page, PAGE)
    ctx: dict[str, Any] = {
        "session": session,
        **window,
        "error": None if result.ok else result.message,
    }
    ctx["credits"] = await _credits(parts, cred, [u["id"] for u in ctx["rows"]])
    name = "partials/users_table.html" if request.headers.get("hx-request") else "users.html"
    return parts.templates.TemplateResponse(request, name, ctx)


def _money(value: str, field: str, *, required: bool = False) -> str | None:
    if not value.strip() and not required:
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        number = Decimal(-1)
    if not number.is_finite() or number <= 0:
        raise ValidationFailed(f"{field}: an amount in USD above 0", param=field)
    return str(number)


@router.post("")
async def create_user(
    ctx: AdminAct,
    user_id: Annotated[str, Form(min_length=1, max_length=64)],
    tier: Annotated[str, Form(min_length=1, max_length=64)] = "free",
    budget: Annotated[str, Form(max_length=40)] = "",
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


async def _user_context(parts: PartsDep, cred: str, user_id: str) -> dict[str, Any]:
    call = parts.client.call
    user = await call("config", "GET", f"/api/v1/users/{user_id}", cred)
    keys = await call(
        "config", "GET", "/api/v1/keys", cred, params={"user_id": user_id, "limit": 500}
    )
    credits = await call("metering", "GET", f"/api/v1/credits/{user_id}", cred)
    ledger = await call(
        "metering", "GET", f"/api/v1/credits/{user_id}/ledger", cred, params={"limit": 20}
    )
    tiers = await call("config", "GET", "/api/v1/tiers", cred)
    return {
        "tiers": tiers.data["data"] if tiers.ok else [],
        "user": user.data if user.ok else None,
        "user_error": None if user.ok else user.message,
        "keys": keys.data["data"] if keys.ok else [],
        "credits": credits.data if credits.ok else None,
        "ledger": ledger.data.get("data", []) if ledger.ok else [],
    }


@router.get("/{user_id}")
async def user_page(request: Request, parts: PartsDep, session: AdminDep, user_id: str) -> Response:
    ctx = await _user_context(parts, session.credential.get_secret_value(), safe_segment(user_id))
    name = "partials/user_detail.html" if request.headers.get("hx-request") else "user.html"
    return parts.templates.TemplateResponse(request, name, {"session": session, **ctx})


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
    amount: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(min_length=1, max_length=200)] = "granted in the console",
) -> Response:
    body = {"amount_usd": _money(amount, "amount", required=True), "reason": reason}
    path = f"/api/v1/credits/{safe_segment(user_id)}/grant"
    done = f"Granted ${body['amount_usd']}."
    return await ctx.act("metering", "POST", path, done, json=body, trigger=CHANGED)
