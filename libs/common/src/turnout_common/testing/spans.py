"""Span helpers for tracing tests: an in-memory tracer provider and small readers."""

from __future__ import annotations

import secrets
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def memory_provider(service: str, exporter: InMemorySpanExporter) -> TracerProvider:
    """A provider for ``service`` whose spans reach ``exporter`` as each one ends."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def span_context(span: ReadableSpan) -> Any:
    assert span.context is not None
    return span.context


def attribute(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(name)


def service_of(span: ReadableSpan) -> Any:
    return span.resource.attributes.get("service.name")


def new_traceparent() -> tuple[int, int, str]:
    """A fresh sampled W3C ``traceparent``: ``(trace_id, span_id, header value)``."""
    trace_id, span_id = secrets.randbits(128) or 1, secrets.randbits(64) or 1
    return trace_id, span_id, f"00-{trace_id:032x}-{span_id:016x}-01"
