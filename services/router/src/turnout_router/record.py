"""The usage record: one per request, always; what goes to ``turnout.usage.v1``.

Built once, when the request ends (:meth:`turnout_router.context.RequestContext.record`), already
priced (:mod:`turnout_router.pricing`), then read by the metrics and the trace and handed to the
emitter, whose flusher turns it into the event's JSON (:meth:`UsageRecord.event`). Its fields are
:class:`turnout_common.events.UsageEvent`'s, but ``started_at`` stays epoch seconds until then:
the request path does only what it must (a dict for orjson is ~5x cheaper to serialise than a
slotted dataclass; ``bench/record_cost.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from turnout_router.adapters.base import Purpose


class Attempt(TypedDict):
    """One upstream attempt of a request (``UsageEvent.attempts``); a typed dict, as it goes
    into the event unchanged."""

    provider_id: str
    provider: str
    model: str
    upstream_model: str
    deployment_id: str
    status: int | None
    error: str | None
    latency_ms: float


@dataclass(slots=True)
class UsageRecord:
    request_id: str
    purpose: Purpose
    started_at: float
    """epoch seconds (an ISO 8601 time in the event)"""
    api: str = "chat.completions"
    """the client API: chat.completions, completions, embeddings, rerank, messages, responses"""
    user_id: str | None = None
    key_id: str | None = None
    requested_model: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    provider_id: str | None = None
    provider: str | None = None
    deployment_id: str | None = None
    byok: bool = False
    route: str | None = None
    power_level: str | None = None
    task_type: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    cost_usd: str = "0"
    """USD with 9 decimals, as a string (exact): the catalog price of what was served."""
    billed_usd: str = "0.000000000"
    """what it debits the caller: ``cost_usd``, or for a BYOK-served request its tier's fee
    (:mod:`turnout_router.billing`)"""
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int = 200
    outcome: str = "success"
    error_code: str | None = None
    stream: bool = False
    fallbacks: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    source: str = "api"

    def event(self, event_id: str, occurred_at: datetime) -> dict[str, Any]:
        """The ``turnout.usage.v1`` event (:class:`turnout_common.events.UsageEvent`)."""
        return {
            "event_id": event_id,
            "schema_version": 1,
            "occurred_at": occurred_at,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "key_id": self.key_id,
            "purpose": self.purpose,
            "api": self.api,
            "requested_model": self.requested_model,
            "model": self.model,
            "upstream_model": self.upstream_model,
            "provider_id": self.provider_id,
            "provider": self.provider,
            "deployment_id": self.deployment_id,
            "byok": self.byok,
            "route": self.route,
            "power_level": self.power_level,
            "task_type": self.task_type,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "estimated": self.estimated,
            "cost_usd": self.cost_usd,
            "billed_usd": self.billed_usd,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "status": self.status,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "stream": self.stream,
            "fallbacks": self.fallbacks,
            "attempts": self.attempts,
            "source": self.source,
            "started_at": datetime.fromtimestamp(self.started_at, UTC),
        }

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> UsageRecord:
        """A record from its event's JSON (the in-flight journal)."""
        data = {k: v for k, v in data.items() if k not in _STAMPS}
        data["started_at"] = datetime.fromisoformat(data["started_at"]).timestamp()
        return cls(**data)


_STAMPS = frozenset({"event_id", "schema_version", "occurred_at"})
