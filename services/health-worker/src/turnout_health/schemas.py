"""API response models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

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
