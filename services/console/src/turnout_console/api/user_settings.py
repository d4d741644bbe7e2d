"""A user's settings and credits (admin): tier, monthly budget and enabled (config-api), and
signed adjustments of the prepaid balance (metering). Grants are in admin_users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_common.errors import ValidationFailed
from turnout_console.api.context import AdminAct
from turnout_console.forms import Checkbox, Ident, Number, decimal_text
from turnout_console.views import safe_segment

router = APIRouter(prefix="/users")
CHANGED = "user-changed"
"""The event one user's page refreshes on."""


def _amount(value: str, field: str, *, signed: bool) -> str | None:
    """A USD amount (blank: None): non-zero when ``signed``, else 0 or more."""
    if not value.strip():
        return None
    if signed:
        want = "a non-zero amount in USD (negative takes credit away)"
        return decimal_text(value, field, want, lambda n: n != 0)
    return decimal_text(value, field, "an amount in USD, 0 or more", lambda n: n >= 0)


@router.post("/{user_id}/settings")
async def save_settings(
    ctx: AdminAct,
    user_id: str,
    tier: Ident,
    budget: Number = "",
    enabled: Checkbox = "",
) -> Response:
    """Blank budget: no monthly budget."""
    body = {
        "tier": tier.strip(),
        "monthly_budget_usd": _amount(budget, "budget", signed=False),
        "enabled": enabled == "on",
    }
    path = f"/api/v1/users/{safe_segment(user_id)}"
    return await ctx.act(
        "config", "PATCH", path, f"User {user_id} saved.", json=body, trigger=CHANGED
    )


@router.post("/{user_id}/adjust")
async def adjust(
    ctx: AdminAct,
    user_id: str,
    amount: Number,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    body = {"amount_usd": _amount(amount, "amount", signed=True), "reason": reason}
    if body["amount_usd"] is None:
        raise ValidationFailed("amount: a non-zero amount in USD", param="amount")
    path = f"/api/v1/credits/{safe_segment(user_id)}/adjust"
    done = f"Balance adjusted by ${body['amount_usd']}."
    return await ctx.act("metering", "POST", path, done, json=body, trigger=CHANGED)
