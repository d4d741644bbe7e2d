"""The BYOK billing policy's arithmetic (exact, integer nano-USD) and its config."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from turnout_router.billing import billed_nano, fee_units, nano_of
from turnout_router.entities import Tier
from turnout_router.pricing import nano_str


def test_fee_units() -> None:
    assert fee_units("2.5") == 25_000
    assert fee_units("0.0001") == 1
    assert fee_units("100") == 1_000_000
    assert fee_units(None) == fee_units("") == fee_units("x") == fee_units("-1") == 0
    assert Tier.from_data({"name": "t", "rank": 1, "byok_fee_pct": "7.25"}).byok_fee == 72_500
    assert Tier.from_data({"name": "t", "rank": 1}).byok_fee == 0


@given(
    cost=st.integers(min_value=0, max_value=10**15),
    pct=st.decimals(min_value=0, max_value=100, places=4),
)
def test_billed_is_the_fee_rounded_half_up(cost: int, pct: Decimal) -> None:
    want = (Decimal(cost) * pct / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert billed_nano(cost, True, fee_units(str(pct))) == int(want)
    assert billed_nano(cost, False, fee_units(str(pct))) == cost


def test_nano_strings() -> None:
    assert nano_of("0.000006150") == 6150 and nano_str(6150) == "0.000006150"
    assert nano_of("12.5") == 12_500_000_000 and nano_str(12_500_000_000) == "12.500000000"
