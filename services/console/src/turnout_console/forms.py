"""Form and filter fields as config-api and metering take them: whole numbers, decimals as
text (USD amounts and prices), days. A bad value is a 422 naming the field and what it
wants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from fastapi import Form, Query

from turnout_common.errors import ValidationFailed

Name = Annotated[str, Form(min_length=1, max_length=200)]
"""A name or id someone types (a provider, model or rule)."""
Ident = Annotated[str, Form(min_length=1, max_length=64)]
"""A user id or a tier name."""
Number = Annotated[str, Form(max_length=40)]
"""A number typed as text (a price, an amount, a limit): parsed here, so its error is ours."""
Checkbox = Annotated[str, Form(max_length=5)]
"""``on`` when ticked, absent (blank) when not."""
Secret = Annotated[str, Form(max_length=4096)]
"""An API key typed into a password field."""
PowerLevel = Annotated[Literal["", "eco", "balanced", "precision"], Form()]
ContextWindow = Annotated[int | None, Form(ge=1, le=100_000_000)]


def whole_number(value: str, field: str) -> int | None:
    """Blank is None (no value)."""
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(f"{field}: a whole number", param=field) from None


def decimal_text(value: str, field: str, want: str, ok: Callable[[Decimal], bool]) -> str:
    """A finite decimal for which ``ok`` holds, as text; else ``{field}: {want}``."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or not ok(number):
        raise ValidationFailed(f"{field}: {want}", param=field)
    return str(number)


def price(value: str, field: str) -> str:
    """A price in USD per 1M tokens (blank: 0)."""
    return decimal_text(
        value or "0", field, "a price in USD per 1M tokens, 0 or more", lambda n: n >= 0
    )


DayQ = Annotated[str | None, Query(alias="from", max_length=10)]
ToQ = Annotated[str | None, Query(alias="to", max_length=10)]


def day_param(value: str | None, name: str) -> str | None:
    """A date filter left blank is none; anything else must be YYYY-MM-DD (given back so)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValidationFailed(f"{name}: a day as YYYY-MM-DD", param=name) from None


def day_range(first: str | None, last: str | None) -> tuple[str | None, str | None]:
    """Days as the datetimes a service filters on: the start of the first day, the end of
    the last."""
    return (first and f"{first}T00:00:00Z", last and f"{last}T23:59:59.999999Z")
