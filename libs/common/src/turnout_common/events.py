"""Versioned event schemas for every topic (see ``topics.py``).

Every event carries ``event_id`` (unique per event), ``schema_version`` and ``occurred_at``.
Money is ``Decimal`` (serialised as a JSON string) so billing never loses a cent to floats.
Secrets never appear in plaintext: provider keys travel as Fernet ciphertext
(``api_key_encrypted``) and only the router / health-worker decrypt them when calling out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field

from turnout_common.money import Money


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Common envelope fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Any:
        return cls.model_validate_json(raw)


# --- turnout.config.v1 -------------------------------------------------------------------

ConfigEntity = Literal[
    "provider",
    "model",
    "route",
    "routing_rule",
    "tier",
    "user",
    "virtual_key",
    "byok_key",
    "power_level",
    "admin_token",
]


class ConfigEvent(Event):
    """A committed config change: the full entity snapshot, or a tombstone (``data=None``).

    ``revision`` increases monotonically over all config changes; a consumer applies an
    event only if its revision is newer than what it holds for that entity.
    Kafka key: ``f"{entity}:{entity_id}"``.
    """

    revision: int
    entity: ConfigEntity
    entity_id: str
    op: Literal["upsert", "delete"]
    data: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.entity}:{self.entity_id}"


# --- turnout.health.v1 -------------------------------------------------------------------

HealthStatus = Literal["healthy", "degraded", "down", "auth_failed", "unknown"]
CircuitState = Literal["closed", "open", "half_open"]


class HealthEvent(Event):
    """A provider (or one deployment of it) changed state. Key: ``provider_id``."""

    provider_id: str
    deployment_id: str | None = None
    status: HealthStatus
    circuit: CircuitState = "closed"
    latency_ms: float | None = None
    reason: str = ""
    auto_disabled: bool = False
    queue_waiting: float | None = None
    """vLLM's ``vllm:num_requests_waiting`` at the probe (provider-level events of ``vllm``
    providers whose ``/metrics`` answered; null otherwise): the router's ``least_busy``."""
    queue_running: float | None = None
    """vLLM's ``vllm:num_requests_running`` at the probe (as ``queue_waiting``)."""


# --- turnout.usage.v1 --------------------------------------------------------------------

UsageOutcome = Literal[
    "success", "upstream_error", "rejected", "client_abort", "error", "router_crash"
]


class Attempt(BaseModel):
    """One upstream attempt inside a request's fallback chain."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    provider_id: str
    provider: str
    model: str
    upstream_model: str
    deployment_id: str
    status: int | None = None
    error: str | None = None
    latency_ms: float | None = None


class UsageEvent(Event):
    """One record per request (its whole attempt chain). Key: ``request_id``.

    ``request_id`` is the idempotency key for metering.
    """

    request_id: str
    user_id: str | None = None
    key_id: str | None = None
    purpose: Literal["chat", "completion", "embeddings", "reranking"] = "chat"
    api: (
        Literal["chat.completions", "completions", "embeddings", "rerank", "messages", "responses"]
        | None
    ) = None
    """The client API the request came in by (``/v1/messages`` → ``messages``, …); None in
    records from routers older than the field."""
    requested_model: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    provider_id: str | None = None
    provider: str | None = None
    deployment_id: str | None = None
    byok: bool = False
    route: str | None = None
    """Why this model: ``model`` (as requested), ``rule:<id>`` or ``route:<purpose>``."""
    power_level: Literal["eco", "balanced", "precision"] | None = None
    """The request's ``x-power-level``, if it sent one."""
    task_type: str | None = Field(None, max_length=64)
    """The request's ``x-task-type``, if it sent one."""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    cost_usd: Money = Decimal(0)
    """What the request cost at the catalog's prices (for analytics, whoever's key served)."""
    billed_usd: Money | None = None
    """What it debits the user (budgets, prepaid credit): ``cost_usd``, except for a request
    served with the user's own provider key (``byok``), which bills its tier's
    ``byok_fee_pct`` percent of it (half-up to 1e-9 USD). None in records from routers older
    than the field: ``cost_usd``."""
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int = 200
    outcome: UsageOutcome = "success"
    error_code: str | None = None
    stream: bool = False
    fallbacks: int = 0
    attempts: list[Attempt] = Field(default_factory=list)
    source: str = "api"
    started_at: datetime = Field(default_factory=utcnow)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def billed(self) -> Decimal:
        """What the request debits: ``billed_usd``, else (older records) ``cost_usd``."""
        return self.cost_usd if self.billed_usd is None else self.billed_usd


# --- turnout.credit.v1 -------------------------------------------------------------------


class CreditEvent(Event):
    """Budget state of a user or a key. Key: ``f"{subject_type}:{subject_id}"``.

    ``blocked`` is the router's signal: refuse with 429 ``insufficient_quota``.
    ``remaining_usd`` is None when the subject has no limit.
    """

    subject_type: Literal["user", "key"]
    subject_id: str
    period: str
    limit_usd: Money | None = None
    spent_usd: Money = Decimal(0)
    remaining_usd: Money | None = None
    balance_usd: Money | None = None
    blocked: bool = False
    lab_requests: int = 0
    """Testing-lab requests (``source: lab``) of this user this period (users only)."""
    lab_quota: int | None = None
    """The user's tier's ``lab_monthly_quota`` (None: no quota)."""
    lab_blocked: bool = False
    """The lab quota is used up: the router refuses lab requests (429 ``lab_quota_exceeded``)."""
    seq: int = 0

    @property
    def key(self) -> str:
        return f"{self.subject_type}:{self.subject_id}"


# --- turnout.alerts.v1 -------------------------------------------------------------------

AlertKind = Literal[
    "budget_threshold",  # spend crossed 50 / 80 / 100 % of a user's or key's budget
    "credits_exhausted",  # a prepaid balance reached zero
    "provider_down",
    "provider_recovered",
    "circuit_open",
    "metering_lag",  # metering's consumer lag went above TURNOUT_ALERT_METERING_LAG_MAX
]


class AlertEvent(Event):
    """Something a person should hear about, emitted once per crossing (not per request).

    Key: ``f"{alert}:{subject_type}:{subject_id}"``. ``user_id`` is the user the alert is
    about (budget and credit alerts), so per-user webhooks get theirs. ``details`` holds the
    figures (``threshold_pct``, ``spent_usd``, ``limit_usd``, ``period``, ``lag``, ...).
    """

    alert: AlertKind
    severity: Literal["info", "warning", "critical"] = "warning"
    subject_type: Literal["user", "key", "provider", "service"]
    subject_id: str
    user_id: str | None = None
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.alert}:{self.subject_type}:{self.subject_id}"


# --- turnout.billing.v1 ------------------------------------------------------------------


class BillingEvent(BaseModel):
    """A priced, de-duplicated usage record as a CloudEvents 1.0 JSON envelope.

    ``id`` is the request id, so a billing consumer de-duplicates on it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    type: str = "io.turnout.usage.billed.v1"
    source: str = "turnout/metering"
    id: str
    time: datetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def dumps(obj: Any) -> bytes:
    """Fast JSON for payloads that are already plain data."""
    return orjson.dumps(obj, default=str)
