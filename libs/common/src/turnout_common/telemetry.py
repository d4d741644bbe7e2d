"""OpenTelemetry and Prometheus setup.

Traces: an SDK tracer provider per service; the OTLP exporter is configured by the standard
``OTEL_*`` variables (enabled when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set). Metrics: the
prometheus_client default registry, exposed at ``/metrics``.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


def setup_tracing(
    service: str, *, extra_processors: tuple[SpanProcessor, ...] = (), set_global: bool = True
) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def metrics_payload(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
