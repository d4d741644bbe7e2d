"""Tiers (admin): every tier with its rank, monthly credits, rate limits, key maximum, lab
quota and BYOK fee, each editable; a new tier is a PUT of a new name (config-api validates
every field; the form sends every field, so a PUT keeps what it shows)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView
from turnout_console.schemas import TierForm
from turnout_console.views import safe_segment

router = APIRouter(prefix="/tiers")


@router.get("")
async def tiers_page(ctx: AdminView) -> Response:
    result = await ctx.get("config", "/api/v1/tiers")
    tiers = {
        "tiers": result.data["data"] if result.ok else [],
        "error": None if result.ok else result.message,
    }
    return ctx.page("tiers.html", "partials/tiers_table.html", tiers)


@router.post("")
async def save_tier(ctx: AdminAct, form: Annotated[TierForm, Form()]) -> Response:
    """A PUT: the tier gets exactly these values (blank limits: none)."""
    name = form.name.strip()
    path = f"/api/v1/tiers/{safe_segment(name)}"
    done = f"Tier {name} saved."
    return await ctx.act("config", "PUT", path, done, json=form.body(), trigger="tiers-changed")
