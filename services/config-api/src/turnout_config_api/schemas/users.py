"""Users and tiers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_serializer

from turnout_config_api.schemas.common import Limit, Money, Name, Strict, TierName


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


class UserCreate(Strict):
    id: Name | None = Field(None, description="your id for the user; generated when omitted")
    tier: TierName = "free"
    monthly_budget_usd: Money | None = None
    enabled: bool = True


class UserUpdate(Strict):
    tier: TierName | None = None
    monthly_budget_usd: Money | None = None
    enabled: bool | None = None


class UserOut(BaseModel):
    id: str
    tier: str
    monthly_budget_usd: Decimal | None
    enabled: bool
    revision: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("monthly_budget_usd")
    def _ser(self, value: Decimal | None) -> str | None:
        return _money(value)


class TierPut(Strict):
    rank: int = Field(ge=0, le=1000)
    monthly_credits_usd: Money = Decimal(0)
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    max_keys: Limit | None = Field(
        None, description="most active keys a user may create themselves (null: no maximum)"
    )
    lab_monthly_quota: Limit | None = Field(
        None,
        description="testing-lab requests (x-turnout-source: lab) a user may send per UTC month;"
        " null: no quota (seeded: free 100, starter 1000, professional 5000, enterprise 10000)",
    )
    byok_fee_pct: Decimal = Field(
        Decimal(0),
        ge=0,
        le=100,
        decimal_places=4,
        description="a request served with the user's own provider key (BYOK) debits this"
        " percentage of its catalog cost (its cost_usd is still recorded in full)",
    )


class TierOut(BaseModel):
    name: str
    rank: int
    monthly_credits_usd: Decimal
    rpm_limit: int | None
    tpm_limit: int | None
    max_keys: int | None = None
    lab_monthly_quota: int | None = None
    byok_fee_pct: Decimal = Decimal(0)
    revision: int
    updated_at: datetime

    @field_serializer("monthly_credits_usd", "byok_fee_pct")
    def _ser(self, value: Decimal) -> str | None:
        return _money(value)
