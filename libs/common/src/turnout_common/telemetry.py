"""OpenTelemetry and Prometheus setup.

Traces: an SDK tracer provider per service, made only when tracing is on
(:meth:`turnout_common.settings.CommonSettings.tracing_requested`) or injected by a test. Its
exporters follow the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``, the default;
``console``; ``none``; comma-separated), the OTLP exporter's own ``OTEL_EXPORTER_OTLP_*``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_TRACES_SAMPLER[_ARG]``.
OpenTelemetry is imported inside :func:`setup_tracing`, so a service that does not trace never
loads it. Metrics: the prometheus_client default registry, exposed at ``/metrics``.

Messages written for later (outbox rows) take the trace context of the span that caused them
from :func:`message_trace_headers`: a context variable that only a tracing service sets, inside
its spans (:meth:`turnout_common.tracing.ServiceTracing.active`), so when tracing is off a write
pays one variable read and one ``is None`` check.
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class MessageTracing(Protocol):
    def message_context(self, topic: str, count: int, key: str | bytes | None) -> dict[str, str]:
        """The W3C context (``traceparent``, ``tracestate``) for messages created now."""
        ...


MESSAGE_TRACING: ContextVar[MessageTracing | None] = ContextVar(
    "turnout_message_tracing", default=None
)
"""Set (by the tracing service) only while one of its spans is the current one."""


def message_trace_headers(
    topic: str, count: int = 1, key: str | bytes | None = None
) -> dict[str, str] | None:
    """Headers carrying the current span's trace context for ``count`` messages to ``topic``
    (``key``: the message's, when there is one), or None when nothing is being traced."""
    tracing = MESSAGE_TRACING.get()
    if tracing is None:
        return None
    return tracing.message_context(topic, count, key) or None


def trace_exporter_names() -> list[str]:
    """The traces exporters the environment asks for (``OTEL_TRACES_EXPORTER``)."""
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    return [n for n in names if n and n != "none"]


def setup_tracing(
    service: str, *, extra_processors: tuple[SpanProcessor, ...] = (), set_global: bool = True
) -> TracerProvider:
    """A tracer provider for ``service`` (``OTEL_SERVICE_NAME`` wins) with the exporters of
    :func:`trace_exporter_names` behind batch processors; call ``shutdown()`` to flush."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in trace_exporter_names():
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                log.warning("OTLP protocol %r is not installed; using http/protobuf", protocol)
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            log.warning("unknown OTEL_TRACES_EXPORTER %r ignored (use otlp, console, none)", name)
    for processor in extra_processors:
        provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def metrics_payload(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
