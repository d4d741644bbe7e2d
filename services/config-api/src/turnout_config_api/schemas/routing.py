"""Routes (primary + fallbacks per purpose) and routing rules."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from turnout_config_api.schemas.common import (
    Limit,
    ModelName,
    Name,
    PowerLevel,
    Priority,
    Purpose,
    RoutingStrategy,
    Strict,
    TierName,
    Weight,
)


class RoutePut(Strict):
    model: ModelName
    fallbacks: list[ModelName] = Field(default_factory=list, max_length=20)


class RouteOut(BaseModel):
    purpose: Purpose
    model: str
    fallbacks: list[str]
    revision: int
    updated_at: datetime


class _RuleFields(Strict):
    @model_validator(mode="after")
    def _token_bounds(self) -> _RuleFields:
        lo, hi = getattr(self, "min_tokens", None), getattr(self, "max_tokens", None)
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_tokens must not be greater than max_tokens")
        return self


class RuleCreate(_RuleFields):
    name: Name
    enabled: bool = True
    priority: Priority = Field(100, description="lower runs first")
    power_level: PowerLevel | None = None
    tier: TierName | None = None
    task_type: str | None = Field(None, min_length=1, max_length=64)
    model: ModelName | None = Field(None, description="the requested model this rule matches")
    min_tokens: Limit | None = None
    max_tokens: Limit | None = None
    requires_byok: bool = False
    targets: list[ModelName] = Field(min_length=1, max_length=20)
    weight: Weight = 1
    routing_strategy: RoutingStrategy | None = Field(
        None, description="how the targets pick among their deployments; null: each its own"
    )


class RuleUpdate(_RuleFields):
    name: Name | None = None
    enabled: bool | None = None
    priority: Priority | None = None
    power_level: PowerLevel | None = None
    tier: TierName | None = None
    task_type: str | None = Field(None, min_length=1, max_length=64)
    model: ModelName | None = None
    min_tokens: Limit | None = None
    max_tokens: Limit | None = None
    requires_byok: bool | None = None
    targets: list[ModelName] | None = Field(None, min_length=1, max_length=20)
    weight: Weight | None = None
    routing_strategy: RoutingStrategy | None = None


class RuleOut(BaseModel):
    id: str
    name: str
    enabled: bool
    priority: int
    power_level: str | None
    tier: str | None
    task_type: str | None
    model: str | None
    min_tokens: int | None
    max_tokens: int | None
    requires_byok: bool
    targets: list[str]
    weight: int
    routing_strategy: str | None
    revision: int
    created_at: datetime
    updated_at: datetime
