"""Provider requests and responses (the key is write-only; responses carry a hint)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from turnout_config_api.kinds import ProviderKind
from turnout_config_api.schemas.common import (
    ApiKey,
    Limit,
    Metadata,
    Name,
    Priority,
    Strict,
    TierName,
    Weight,
)


class ProviderCreate(Strict):
    name: Name
    kind: ProviderKind
    base_url: str | None = Field(None, max_length=2000)
    api_key: ApiKey | None = None
    enabled: bool = True
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    priority: Priority = 0
    weight: Weight = 1
    min_tier: TierName = "free"
    is_system: bool = False
    byok_enabled: bool = Field(
        False,
        description="users may add their own key for this provider (cloud kinds only); it is"
        " used only against this provider's base_url",
    )
    timeout_s: float = Field(60.0, gt=0, le=3600)
    metadata: Metadata = Field(default_factory=dict)


class ProviderUpdate(Strict):
    name: Name | None = None
    kind: ProviderKind | None = None
    base_url: str | None = Field(None, max_length=2000)
    api_key: ApiKey | None = None
    enabled: bool | None = None
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    priority: Priority | None = None
    weight: Weight | None = None
    min_tier: TierName | None = None
    is_system: bool | None = None
    byok_enabled: bool | None = None
    timeout_s: float | None = Field(None, gt=0, le=3600)
    metadata: Metadata | None = None


class ProviderHealth(BaseModel):
    """The latest state the health-worker published for a provider."""

    status: str
    circuit: str
    auto_disabled: bool
    reason: str
    latency_ms: float | None
    changed_at: datetime
    degraded_deployments: list[str]
    """Deployments (catalog ids) of this provider whose own state is not ``healthy``."""


class ProviderOut(BaseModel):
    id: str
    name: str
    kind: str
    base_url: str
    enabled: bool
    has_api_key: bool
    api_key_hint: str | None
    rpm_limit: int | None
    tpm_limit: int | None
    priority: int
    weight: int
    min_tier: str
    is_system: bool
    byok_enabled: bool
    timeout_s: float
    metadata: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime
    health: ProviderHealth | None = Field(
        None,
        description="the latest state from the health-worker (turnout.health.v1); null until"
        " it has reported on this provider",
    )
    model_count: int | None = Field(
        None, description="how many catalog models this provider serves (in lists only)"
    )


class ProbeResult(BaseModel):
    provider: str
    kind: str
    ok: bool
    status: Literal["healthy", "degraded", "down", "auth_failed"]
    http_status: int | None = None
    latency_ms: float
    message: str
    models: list[str] = Field(default_factory=list)


class DiscoverResult(BaseModel):
    provider: str
    discovered: int
    added: list[str]
    already_present: list[str]
    priced: list[str] = Field(description="added enabled, priced from the shipped price table")
    disabled_unpriced: list[str] = Field(description="added disabled until an admin prices them")
    price_table_as_of: str


class ByokProviderOut(BaseModel):
    """A provider open to BYOK, as a user sees it (never its URL)."""

    provider_id: str
    provider_name: str
    kind: str
    has_key: bool = Field(description="the caller's user has a key for it")
