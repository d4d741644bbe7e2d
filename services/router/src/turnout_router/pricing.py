"""What a request costs, and settling it against the caller's budgets. One place, once per
request: the ``x-turnout-cost-usd`` header, the request log and the usage record all read the
figure :meth:`turnout_router.context.RequestContext.cost` computes here (docs/CONTRACTS.md).

Prices are USD per million tokens; cached input tokens are priced at the cached price. A
deployment whose prices are whole micro-USD per Mtok (nearly all) is priced in integer nano-USD
(exact, ~10x faster than Decimal); any other price in Decimal, rounded half up to 9 decimals.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from turnout_router.budgets import Reservation
    from turnout_router.entities import Deployment
    from turnout_router.limiter import Limiter
    from turnout_router.record import UsageRecord

NANO = Decimal("0.000000001")
MTOK = Decimal(1_000_000)


def price(inp: int, out: int, cached: int, prices: tuple[Decimal, Decimal, Decimal]) -> Decimal:
    """Cost in USD per docs/CONTRACTS.md: cached input tokens are priced at the cached price."""
    p_in, p_out, p_cached = prices
    cached = min(cached, inp)
    cost = (Decimal(inp - cached) * p_in + Decimal(cached) * p_cached + Decimal(out) * p_out) / MTOK
    return cost.quantize(NANO, rounding=ROUND_HALF_UP)


def price_nano(inp: int, out: int, cached: int, micro: tuple[int, int, int]) -> int:
    """The same cost in integer nano-USD from micro-USD-per-Mtok prices (exact, ~10x faster)."""
    cached = min(cached, inp)
    pico = (inp - cached) * micro[0] + cached * micro[2] + out * micro[1]  # 1e-12 USD
    nano, rest = divmod(pico, 1000)
    return nano + 1 if rest >= 500 else nano


def nano_str(nano: int) -> str:
    return f"{nano // 1_000_000_000}.{nano % 1_000_000_000:09d}"


def cost_of(d: Deployment, inp: int, out: int, cached: int) -> tuple[str, int]:
    """(exact USD string with 9 decimals, the same in nano-USD)."""
    if d.int_prices is not None:
        nano = price_nano(inp, out, cached, d.int_prices)
        return nano_str(nano), nano
    dec = price(inp, out, cached, (d.input_price, d.output_price, d.cached_price))
    return format(dec, "f"), int(dec.scaleb(9))


def settle(
    limiter: Limiter, record: UsageRecord, billed_nano: int, reservation: Reservation | None
) -> None:
    """Release the request's budget reservation and count what it bills, in one step: there is
    no moment when the request counts neither as reserved nor as spent."""
    if billed_nano or reservation is not None:
        limiter.charge(record.user_id, record.key_id, billed_nano / 1e9, reservation)
