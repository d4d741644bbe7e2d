"""API response models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from turnout_common.events import CircuitState, HealthStatus


class PassiveStats(BaseModel):
    deployment_id: str | None
    requests: int
    errors: int
    error_rate: float
    avg_latency_ms: float | None
    max_latency_ms: float | None


class DeploymentHealth(BaseModel):
    deployment_id: str
    status: HealthStatus
    circuit: CircuitState
    auto_disabled: bool
    latency_ms: float | None
    reason: str
    changed_at: datetime | None


class ProviderHealth(BaseModel):
    provider_id: str
    name: str | None
    kind: str | None
    enabled: bool | None
    is_system: bool
    status: HealthStatus
    circuit: CircuitState
    auto_disabled: bool
    latency_ms: float | None
    reason: str
    recent_failures: int
    last_probe_at: datetime | None
    changed_at: datetime | None
    deployments: list[DeploymentHealth]
    passive: list[PassiveStats]
    override: OverrideOut | None = Field(
        None, description="an active admin override: the state the router sees instead"
    )


class ProviderList(BaseModel):
    """The list envelope every list uses (unpaginated: ``limit == total``)."""

    data: list[ProviderHealth]
    total: int
    limit: int
    offset: int = 0


class ProbeRecord(BaseModel):
    id: int
    at: datetime
    status: HealthStatus
    circuit: CircuitState
    http_status: int | None
    latency_ms: float | None
    reason: str


class ProbeHistory(BaseModel):
    provider_id: str
    data: list[ProbeRecord]
    next_before: int | None


class OverridePut(BaseModel):
    """Force a provider ``up`` (served even if probes fail) or ``down`` (never routed to)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["up", "down"]
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")
    expires_at: datetime | None = Field(
        None, description="when the override ends by itself (with a time zone); null: never"
    )

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2026-12-04T18:00:00Z)")
        if value <= datetime.now(UTC):
            raise ValueError("expires_at is in the past")
        return value


class OverrideOut(BaseModel):
    provider_id: str
    status: Literal["up", "down"]
    reason: str
    expires_at: datetime | None
    actor: str
    set_at: datetime


class OverrideLogEntry(BaseModel):
    id: int
    at: datetime
    provider_id: str
    action: Literal["set", "clear", "expire"]
    status: Literal["up", "down"]
    reason: str
    expires_at: datetime | None
    actor: str


class OverrideLog(BaseModel):
    data: list[OverrideLogEntry]
    total: int
    limit: int
    offset: int


class CheckResult(BaseModel):
    """A probe made now, and the provider's state after it."""

    provider_id: str
    probe_status: HealthStatus
    http_status: int | None
    latency_ms: float | None
    probe_reason: str
    status: HealthStatus
    circuit: CircuitState
    reason: str
    override: OverrideOut | None = Field(
        None, description="an active admin override: what the router sees instead"
    )


ProviderHealth.model_rebuild()
