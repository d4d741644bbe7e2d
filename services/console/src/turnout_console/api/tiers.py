"""Tiers (admin): every tier with its rank, monthly credits, rate limits, key maximum, lab
quota and BYOK fee, each editable; a new tier is a PUT of a new name (config-api validates
every field; the form sends every field, so a PUT keeps what it shows)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from turnout_common.errors import ValidationFailed
from turnout_console.deps import AdminCsrfDep, AdminDep, PartsDep
from turnout_console.views import safe_segment, toast

router = APIRouter(prefix="/tiers")
Num = Annotated[str, Form(max_length=40)]


async def _context(parts: PartsDep, cred: str) -> dict[str, Any]:
    result = await parts.client.call("config", "GET", "/api/v1/tiers", cred)
    return {
        "tiers": result.data["data"] if result.ok else [],
        "error": None if result.ok else result.message,
    }


@router.get("")
async def tiers_page(request: Request, parts: PartsDep, session: AdminDep) -> Response:
    ctx = await _context(parts, session.credential.get_secret_value())
    name = "partials/tiers_table.html" if request.headers.get("hx-request") else "tiers.html"
    return parts.templates.TemplateResponse(request, name, {"session": session, **ctx})


def _int(value: str, field: str) -> int | None:
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(f"{field}: a whole number", param=field) from None


@router.post("")
async def save_tier(
    request: Request,
    parts: PartsDep,
    session: AdminCsrfDep,
    name: Annotated[str, Form(min_length=1, max_length=64)],
    rank: Num = "0",
    monthly_credits_usd: Num = "0",
    rpm_limit: Num = "",
    tpm_limit: Num = "",
    max_keys: Num = "",
    lab_monthly_quota: Num = "",
    byok_fee_pct: Num = "0",
) -> Response:
    """A PUT: the tier gets exactly these values (blank limits: none)."""
    body = {
        "rank": _int(rank, "rank") or 0,
        "monthly_credits_usd": monthly_credits_usd.strip() or "0",
        "rpm_limit": _int(rpm_limit, "rpm_limit"),
        "tpm_limit": _int(tpm_limit, "tpm_limit"),
        "max_keys": _int(max_keys, "max_keys"),
        "lab_monthly_quota": _int(lab_monthly_quota, "lab_monthly_quota"),
        "byok_fee_pct": byok_fee_pct.strip() or "0",
    }
    result = await parts.client.call(
        "config",
        "PUT",
        f"/api/v1/tiers/{safe_segment(name.strip())}",
        session.credential.get_secret_value(),
        json=body,
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    return toast(parts, request, "success", f"Tier {name.strip()} saved.", trigger="tiers-changed")
