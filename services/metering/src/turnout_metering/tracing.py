"""OpenTelemetry for the usage consumer: each record's trace continues into metering.

The router sends every usage record with the W3C context of its ``create turnout.usage.v1``
span in the Kafka message headers. For each batch written to the database:

* ``INSERT usage_log`` — CLIENT (PostgreSQL), one per batch, linked to every record's context;
* ``process turnout.usage.v1`` — CONSUMER, one per record that carries a context, as that
  context's child (so it sits in the request's trace), linked to the batch span, with the
  partition, offset and whether the record was new (``turnout.metering.inserted``) or a
  redelivered duplicate.

The batch span is the current one while the batch is written, so the credit and billing
events it causes (outbox) carry its context: a ``create turnout.credit.v1`` /
``create turnout.billing.v1`` span, its child, whose context the router's ``process
turnout.credit.v1`` span continues. The HTTP API's SERVER spans (a grant's credit event
carries the request's trace) and the config follower's CONSUMER spans are
:class:`~turnout_common.tracing.ServiceTracing`'s.

Off unless a tracer provider is injected (``create_app(tracer_provider=…)`` /
``Runtime(tracer_provider=…)``) or the ``OTEL_*`` environment asks for it; when off the consumer
pays one ``is None`` check per batch and the OpenTelemetry SDK is not imported (the API is:
FastAPI imports it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord, TopicPartition
from opentelemetry import propagate
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
    get_current_span,
)
from opentelemetry.util.types import AttributeValue

from turnout_common.events import UsageEvent
from turnout_common.tracing import ServiceTracing
from turnout_metering.usage.repository import BatchResult

if TYPE_CHECKING:
    from turnout_metering.settings import MeteringSettings

Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
Ingest = Callable[[Sequence[UsageEvent]], Awaitable[BatchResult]]


def _carrier(record: ConsumerRecord[bytes, bytes]) -> dict[str, str] | None:
    headers: Any = record.headers
    if not headers:
        return None
    carrier = {k: v.decode("latin-1") for k, v in headers if isinstance(v, bytes)}
    return carrier if "traceparent" in carrier else None


class MeteringTracing(ServiceTracing):
    def __init__(
        self, provider: TracerProvider, *, group: str, schema: str, owned: bool = False
    ) -> None:
        super().__init__(provider, "turnout_metering", owned=owned)
        self.group = group
        self.schema = schema

    @classmethod
    def create(
        cls, settings: MeteringSettings, provider: TracerProvider | None = None
    ) -> MeteringTracing:
        owned = provider is None
        if provider is None:
            from turnout_common.telemetry import setup_tracing

            provider = setup_tracing(settings.service_name)
        return cls(
            provider, group=settings.metering_group, schema=settings.metering_schema, owned=owned
        )

    async def ingest(
        self, batch: Batch, events: Sequence[UsageEvent], ingest: Ingest
    ) -> BatchResult:
        """``ingest(events)`` (one DB transaction) inside the batch and per-record spans."""
        traced: list[tuple[ConsumerRecord[bytes, bytes], Any]] = []
        for records in batch.values():
            for rec in records:
                carrier = _carrier(rec)
                if carrier is not None:
                    traced.append((rec, propagate.extract(carrier)))
        links = [Link(get_current_span(c).get_span_context()) for _, c in traced]
        db = self.tracer.start_span(
            "INSERT usage_log",
            kind=SpanKind.CLIENT,
            links=links,
            attributes={
                "db.system.name": "postgresql",
                "db.namespace": self.schema,
                "db.collection.name": "usage_log",
                "db.operation.name": "INSERT",
                "db.operation.batch.size": len(events),
            },
        )
        to_db = [Link(db.get_span_context())]
        spans: list[tuple[str, Span]] = []
        for rec, context in traced:
            key = rec.key.decode(errors="replace") if rec.key is not None else ""
            attrs: dict[str, AttributeValue] = {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": rec.topic,
                "messaging.destination.partition.id": str(rec.partition),
                "messaging.consumer.group.name": self.group,
                "messaging.kafka.offset": rec.offset,
                "messaging.kafka.message.key": key,
                "turnout.request_id": key,
            }
            span = self.tracer.start_span(
                f"process {rec.topic}",
                context=context,
                kind=SpanKind.CONSUMER,
                links=to_db,
                attributes=attrs,
            )
            spans.append((key, span))
        try:
            with self.active(db, end=False, record=False):  # its credit/billing events carry it
                result = await ingest(events)
        except BaseException as exc:
            for span in [db, *(s for _, s in spans)]:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
                span.end()
            raise
        new = {e.request_id for e in result.inserted}
        db.set_attribute("turnout.metering.rows_inserted", len(new))
        db.set_attribute("turnout.metering.duplicates", result.received - len(new))
        db.end()
        for key, span in spans:
            span.set_attribute("turnout.metering.inserted", key in new)
            span.end()
        return result
