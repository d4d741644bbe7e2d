"""The BYOK billing policy: what a request debits the user, apart from what it cost.

A request served with the user's own provider key (``byok``) costs its catalog price (the
``cost_usd`` recorded for analytics) but bills only its tier's ``byok_fee_pct`` percent of it
(half-up to 1e-9 USD); any other request bills its cost. Integer nano-USD, exact.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

FEE_SCALE = 1_000_000
"""``byok_fee_pct`` is kept as an int in millionths of the whole (2.5 % -> 25_000)."""


def fee_units(pct: Any) -> int:
    """A tier's ``byok_fee_pct`` (a decimal string, at most 4 decimals, 0-100) in
    millionths; anything unreadable is 0 (config-api validates it)."""
    try:
        value = Decimal(str(pct)) if pct not in (None, "") else Decimal(0)
    except InvalidOperation:
        return 0
    if not value.is_finite() or value < 0:
        return 0
    return int(min(value, Decimal(100)) * 10_000)


def billed_nano(cost_nano: int, byok: bool, fee: int) -> int:
    """What a request of ``cost_nano`` bills: all of it, or (BYOK) ``fee`` millionths of it,
    rounded half-up to the nano-USD."""
    if not byok:
        return cost_nano
    share, rest = divmod(cost_nano * fee, FEE_SCALE)
    return share + 1 if 2 * rest >= FEE_SCALE else share


def nano_of(amount: str) -> int:
    """``"0.000006150"`` -> 6150 (a non-negative decimal string with at most 9 decimals)."""
    whole, _, frac = amount.partition(".")
    return int(whole or 0) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)
