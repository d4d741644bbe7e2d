"""A user's settings and credits (admin): tier, monthly budget and enabled (config-api), and
signed adjustments of the prepaid balance (metering). Grants are in admin_users."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from turnout_common.errors import ValidationFailed
from turnout_console.deps import AdminCsrfDep, PartsDep
from turnout_console.views import safe_segment, toast

router = APIRouter(prefix="/users")


def _amount(value: str, field: str, *, signed: bool) -> str | None:
    """A USD amount as text (config-api and metering take decimals as strings)."""
    if not value.strip():
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or (number == 0 if signed else number < 0):
        want = (
            "a non-zero amount in USD (negative takes credit away)"
            if signed
            else "an amount in USD, 0 or more"
        )
        raise ValidationFailed(f"{field}: {want}", param=field)
    return str(number)


@router.post("/{user_id}/settings")
async def save_settings(
    request: Request,
    parts: PartsDep,
    session: AdminCsrfDep,
    user_id: str,
    tier: Annotated[str, Form(min_length=1, max_length=64)],
    budget: Annotated[str, Form(max_length=40)] = "",
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Blank budget: no monthly budget."""
    body = {
        "tier": tier.strip(),
        "monthly_budget_usd": _amount(budget, "budget", signed=False),
        "enabled": enabled == "on",
    }
    result = await parts.client.call(
        "config",
        "PATCH",
        f"/api/v1/users/{safe_segment(user_id)}",
        session.credential.get_secret_value(),
        json=body,
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    return toast(parts, request, "success", f"User {user_id} saved.", trigger="user-changed")


@router.post("/{user_id}/adjust")
async def adjust(
    request: Request,
    parts: PartsDep,
    session: AdminCsrfDep,
    user_id: str,
    amount: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    body = {"amount_usd": _amount(amount, "amount", signed=True), "reason": reason}
    if body["amount_usd"] is None:
        raise ValidationFailed("amount: a non-zero amount in USD", param="amount")
    result = await parts.client.call(
        "metering",
        "POST",
        f"/api/v1/credits/{safe_segment(user_id)}/adjust",
        session.credential.get_secret_value(),
        json=body,
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    msg = f"Balance adjusted by ${body['amount_usd']}."
    return toast(parts, request, "success", msg, trigger="user-changed")
