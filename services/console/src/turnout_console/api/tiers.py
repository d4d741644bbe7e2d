"""Tiers (admin): every tier with its rank, monthly credits, rate limits, key maximum, lab
quota and BYOK fee, each editable; a new tier is a PUT of a new name (config-api validates
every field; the form sends every field, so a PUT keeps what it shows)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView
from turnout_console.forms import Ident, Number, whole_number
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
async def save_tier(
    ctx: AdminAct,
    name: Ident,
    rank: Number = "0",
    monthly_credits_usd: Number = "0",
    rpm_limit: Number = "",
    tpm_limit: Number = "",
    max_keys: Number = "",
    lab_monthly_quota: Number = "",
    byok_fee_pct: Number = "0",
) -> Response:
    """A PUT: the tier gets exactly these values (blank limits: none)."""
    body = {
        "rank": whole_number(rank, "rank") or 0,
        "monthly_credits_usd": monthly_credits_usd.strip() or "0",
        "rpm_limit": whole_number(rpm_limit, "rpm_limit"),
        "tpm_limit": whole_number(tpm_limit, "tpm_limit"),
        "max_keys": whole_number(max_keys, "max_keys"),
        "lab_monthly_quota": whole_number(lab_monthly_quota, "lab_monthly_quota"),
        "byok_fee_pct": byok_fee_pct.strip() or "0",
    }
    path = f"/api/v1/tiers/{safe_segment(name.strip())}"
    done = f"Tier {name.strip()} saved."
    return await ctx.act("config", "PUT", path, done, json=body, trigger="tiers-changed")
