"""Request and response models of the metering API (money is a decimal string in JSON)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from turnout_common.money import Money

GroupBy = Literal["model", "provider", "user", "key", "day", "source"]
# why an admin moved a user's credit (kept in the ledger); blank is refused
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class UsageRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    request_id: str
    started_at: datetime
    user_id: str | None
    key_id: str | None
    purpose: str
    source: str
    requested_model: str | None
    model: str | None
    upstream_model: str | None
    provider: str | None
    provider_id: str | None
    byok: bool
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    estimated: bool
    cost_usd: Money
    """At the catalog's prices, whoever's key served."""
    billed_usd: Money
    """What it debited: ``cost_usd``, or the tier's ``byok_fee_pct`` of it when served with
    the user's own provider key (``byok``)."""
    latency_ms: float
    ttft_ms: float | None
    status: int
    outcome: str
    error_code: str | None
    stream: bool
    fallbacks: int
    attempts: list[dict[str, Any]]
    route: str | None = None
    """Why this model served: ``model`` (as requested), ``rule:<id>`` or ``route:<purpose>``."""
    power_level: str | None = None
    task_type: str | None = None
    api: str | None = None
    """The client API: chat.completions, completions, embeddings, rerank, messages, responses
    (None for records from before the router said)."""


class UsagePage(BaseModel):
    data: list[UsageRecord]
    total: int
    limit: int
    offset: int


class SummaryRow(BaseModel):
    key: str | None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: Money
    billed_usd: Money
    avg_latency_ms: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None


class UsageSummary(BaseModel):
    group_by: GroupBy
    start: date | None
    end: date | None
    data: list[SummaryRow]
    totals: SummaryRow
    groups: int = Field(description="how many groups in all (more than data when limit cut it)")


class KeyCredit(BaseModel):
    key_id: str
    budget_usd: Money | None
    spent_usd: Money
    remaining_usd: Money | None
    blocked: bool


class Credits(BaseModel):
    user_id: str
    tier: str | None
    tier_monthly_credits_usd: Money
    period: str
    limit_usd: Money | None = Field(description="the user's monthly budget (null = none)")
    spent_usd: Money
    remaining_usd: Money | None
    balance_usd: Money | None = Field(description="prepaid credit (null = no credit account)")
    ledger_balance_usd: Money = Field(description="sum of every ledger entry")
    ledger_consistent: bool
    blocked: bool
    keys: list[KeyCredit]


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_usd: Decimal = Field(gt=0, le=Decimal("1000000"), decimal_places=9)
    reason: Reason


class AdjustmentIn(BaseModel):
    """A signed correction of a user's prepaid balance (an ``adjustment`` ledger entry)."""

    model_config = ConfigDict(extra="forbid")

    amount_usd: Decimal = Field(
        ge=Decimal("-1000000"),
        le=Decimal("1000000"),
        decimal_places=9,
        description="positive adds credit, negative removes it (at most down to zero)",
    )
    reason: Reason

    @field_validator("amount_usd")
    @classmethod
    def _not_zero(cls, value: Decimal) -> Decimal:
        if value == 0:
            raise ValueError("must not be zero (positive adds credit, negative removes it)")
        return value


class LedgerEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    kind: Literal["grant", "debit", "adjustment", "expiry"]
    amount_usd: Money
    period: str
    reason: str
    ref: str | None
    actor: str
    requests: int
    created_at: datetime


class LedgerPage(BaseModel):
    user_id: str
    data: list[LedgerEntry]
    total: int
    limit: int
    offset: int
    balance_usd: Money | None
    ledger_balance_usd: Money
