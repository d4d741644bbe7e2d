"""``turnout.billing.v1`` payloads: one CloudEvents 1.0 JSON event per new usage record."""

from __future__ import annotations

from datetime import UTC

import orjson

from turnout_common.events import BillingEvent, UsageEvent
from turnout_common.money import money_str

EVENT_TYPE = "io.turnout.usage.billed.v1"
SOURCE = "turnout/metering"


def billing_subject(event: UsageEvent) -> str:
    if event.user_id:
        return f"user:{event.user_id}"
    if event.key_id:
        return f"key:{event.key_id}"
    return "anonymous"


def billing_event(event: UsageEvent) -> BillingEvent:
    """The priced record; ``id`` is the request id, so consumers de-duplicate on it."""
    return BillingEvent.model_validate_json(billing_payload(event))


def billing_payload(event: UsageEvent) -> bytes:
    """The JSON of :func:`billing_event`, built without a model per record (hot path)."""
    started = event.started_at if event.started_at.tzinfo else event.started_at.replace(tzinfo=UTC)
    return orjson.dumps(
        {
            "specversion": "1.0",
            "type": EVENT_TYPE,
            "source": SOURCE,
            "id": event.request_id,
            "time": started,
            "subject": billing_subject(event),
            "datacontenttype": "application/json",
            "data": {
                "request_id": event.request_id,
                "user_id": event.user_id,
                "key_id": event.key_id,
                "period": f"{started.astimezone(UTC):%Y-%m}",
                "purpose": event.purpose,
                "source": event.source,
                "model": event.model,
                "requested_model": event.requested_model,
                "upstream_model": event.upstream_model,
                "provider": event.provider,
                "provider_id": event.provider_id,
                "byok": event.byok,
                "input_tokens": event.input_tokens,
                "output_tokens": event.output_tokens,
                "cached_tokens": event.cached_tokens,
                "total_tokens": event.total_tokens,
                "estimated": event.estimated,
                "cost_usd": money_str(event.cost_usd),
                "billed_usd": money_str(event.billed),
                "currency": "USD",
                "status": event.status,
                "outcome": event.outcome,
                "latency_ms": event.latency_ms,
                "fallbacks": event.fallbacks,
            },
        },
        option=orjson.OPT_UTC_Z,
    )
