"""Money: ``Decimal`` in code, a plain decimal string on the wire.

``str(Decimal("2.40E-7"))`` is ``"2.40E-7"`` and ``str(Decimal("0E-9"))`` is ``"0E-9"``, which
spreadsheets and many JSON clients misread. Every JSON and CSV amount is written in fixed
notation instead (``"0.000000240"``, ``"0.000000000"``), keeping the value's scale.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer


def money_str(value: Decimal) -> str:
    """``Decimal`` -> fixed-notation string (never an exponent)."""
    return format(value, "f")


Money = Annotated[Decimal, PlainSerializer(money_str, return_type=str, when_used="json")]
"""A ``Decimal`` amount that serialises to a plain decimal string in JSON (and CSV)."""
