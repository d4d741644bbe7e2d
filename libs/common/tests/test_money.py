"""Money is a plain decimal string in JSON (issue 14 item 9: never ``2.40E-7`` or ``0E-9``)."""

from decimal import Decimal

from pydantic import BaseModel

from turnout_common.events import CreditEvent, UsageEvent
from turnout_common.money import Money, money_str


class Row(BaseModel):
    cost_usd: Money
    budget_usd: Money | None = None


def test_no_exponents() -> None:
    assert money_str(Decimal("2.40E-7")) == "0.000000240"
    assert money_str(Decimal("0E-9")) == "0.000000000"
    assert money_str(Decimal("1E+3")) == "1000"
    assert Row(cost_usd=Decimal("2.40E-7")).model_dump_json() == (
        '{"cost_usd":"0.000000240","budget_usd":null}'
    )
    assert Row(cost_usd=Decimal("0E-9")).model_dump(mode="json")["cost_usd"] == "0.000000000"
    # python mode keeps the Decimal
    assert Row(cost_usd=Decimal("0.5")).model_dump()["cost_usd"] == Decimal("0.5")


def test_events_write_plain_amounts() -> None:
    usage = UsageEvent(request_id="r", cost_usd=Decimal("2.4E-7"))
    assert b'"cost_usd":"0.00000024"' in usage.to_bytes()
    credit = CreditEvent(subject_type="user", subject_id="u", period="2026-12",
                         spent_usd=Decimal("0E-9"), remaining_usd=Decimal("1E-8"))  # fmt: skip
    raw = credit.to_bytes()
    assert b'"spent_usd":"0.000000000"' in raw and b'"remaining_usd":"0.00000001"' in raw
