"""Catalog (model deployment) requests and responses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_serializer

from turnout_config_api.schemas.common import (
    Limit,
    ModelName,
    Money,
    PowerLevel,
    Priority,
    Purpose,
    RoutingStrategy,
    Strict,
    TierName,
    Weight,
)


def _chat() -> list[Purpose]:
    return ["chat"]


class Capabilities(Strict):
    """What the model can do. Unset (null) means *not declared*: the request passes through and
    the upstream decides; only an explicit ``false`` refuses requests that need it (400
    ``model_not_capable``). Models of the shipped price table get theirs declared; routing
    prefers deployments that declare what a request needs."""

    streaming: bool | None = None
    tools: bool | None = None
    vision: bool | None = None
    json_mode: bool | None = None


class ModelCreate(Strict):
    provider: str = Field(min_length=1, description="provider id or name")
    upstream_model: str = Field(min_length=1, max_length=300)
    name: ModelName | None = Field(None, description="public name; defaults to upstream_model")
    purposes: list[Purpose] = Field(default_factory=_chat, min_length=1)
    context_window: Limit | None = None
    max_output_tokens: Limit | None = None
    capabilities: Capabilities = Field(default_factory=Capabilities)
    input_price_per_mtok: Money = Decimal(0)
    output_price_per_mtok: Money = Decimal(0)
    cached_price_per_mtok: Money | None = None
    power_level: PowerLevel | None = None
    min_tier: TierName = "free"
    enabled: bool = True
    deprecated: bool = False
    priority: Priority = 0
    weight: Weight = 1
    routing_strategy: RoutingStrategy = Field(
        "weighted",
        description="among the name's deployments of equal priority: weighted (random by "
        "weight), least_busy (fewest requests in flight, plus vLLM's queue) or latency "
        "(lowest recent time to first token)",
    )
    fallbacks: list[ModelName] = Field(default_factory=list, max_length=20)
    aliases: list[ModelName] = Field(default_factory=list, max_length=20)


class ModelUpdate(Strict):
    upstream_model: str | None = Field(None, min_length=1, max_length=300)
    name: ModelName | None = None
    purposes: list[Purpose] | None = Field(None, min_length=1)
    context_window: Limit | None = None
    max_output_tokens: Limit | None = None
    capabilities: Capabilities | None = None
    input_price_per_mtok: Money | None = None
    output_price_per_mtok: Money | None = None
    cached_price_per_mtok: Money | None = None
    power_level: PowerLevel | None = None
    min_tier: TierName | None = None
    enabled: bool | None = None
    deprecated: bool | None = None
    priority: Priority | None = None
    weight: Weight | None = None
    routing_strategy: RoutingStrategy | None = None
    fallbacks: list[ModelName] | None = Field(None, max_length=20)
    aliases: list[ModelName] | None = Field(None, max_length=20)


class ModelOut(BaseModel):
    id: str
    name: str
    provider_id: str
    provider_name: str
    upstream_model: str
    purposes: list[str]
    context_window: int | None
    max_output_tokens: int | None
    capabilities: dict[str, bool]
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    cached_price_per_mtok: Decimal | None
    power_level: str | None
    min_tier: str
    enabled: bool
    deprecated: bool
    priority: int
    weight: int
    routing_strategy: str
    fallbacks: list[str]
    aliases: list[str]
    revision: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("input_price_per_mtok", "output_price_per_mtok", "cached_price_per_mtok")
    def _money(self, value: Decimal | None) -> str | None:
        return None if value is None else format(value.normalize(), "f")


class CatalogEntry(BaseModel):
    """A model as an end user sees it: what it costs and what it can do (no routing
    internals: provider URLs, priorities, weights)."""

    name: str
    provider_name: str
    purposes: list[str]
    context_window: int | None
    max_output_tokens: int | None
    capabilities: dict[str, bool]
    input_price_per_mtok: Decimal = Field(description="USD per 1M input tokens")
    output_price_per_mtok: Decimal = Field(description="USD per 1M output tokens")
    cached_price_per_mtok: Decimal | None = Field(description="USD per 1M cached input tokens")
    power_level: str | None
    deprecated: bool
    aliases: list[str]

    @field_serializer("input_price_per_mtok", "output_price_per_mtok", "cached_price_per_mtok")
    def _money(self, value: Decimal | None) -> str | None:
        return None if value is None else format(value.normalize(), "f")
