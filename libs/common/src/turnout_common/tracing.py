"""OpenTelemetry for HTTP APIs and Kafka hops; imported only by a service that traces.

A tracing service holds a :class:`ServiceTracing` (the router's, health-worker's and
metering's own tracing classes extend it):

* :class:`TracingMiddleware` (ASGI, installed by :func:`turnout_common.web.install_tracing`):
  one SERVER span per HTTP request, ``METHOD route-template`` (``METHOD`` when no route
  matched), a child of the caller's W3C ``traceparent`` if it sent one, with the HTTP
  attributes and ``http.response.status_code``; ERROR on a 5xx answer or an exception.
  ``/healthz``, ``/readyz`` and ``/metrics`` (probes, scrapes) are not traced.
* :meth:`ServiceTracing.active` makes a span the current one, and lets outbox writes inside
  it carry it: each :func:`~turnout_common.outbox.enqueue` / ``enqueue_many`` call opens a
  PRODUCER ``create <topic>`` span, child of the current span, and stores its W3C context
  (``traceparent``, ``tracestate``) in the rows' ``headers``, which the relay sends as the
  Kafka message headers.
* :meth:`ServiceTracing.consuming`: a CONSUMER ``process <topic>`` span around the handling
  of a followed record that carries a trace context, as that context's child. Records
  without one (written while nothing was traced) get no span.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
    get_current_span,
    set_span_in_context,
    use_span,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from starlette.types import ASGIApp, Receive, Scope, Send

from turnout_common.metrics import StatusSeen, route_template
from turnout_common.telemetry import MESSAGE_TRACING

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from turnout_common.settings import CommonSettings

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_W3C = TraceContextTextMapPropagator()  # stored with outbox rows: trace context, no baggage
_CARRIED = frozenset({"traceparent", "tracestate", "baggage"})
_CARRIED_BYTES = frozenset(k.encode() for k in _CARRIED)


def kafka_carrier(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str] | None:
    """A Kafka record's W3C headers, or None if it carries no ``traceparent``."""
    if not headers:
        return None
    carrier = {k: v.decode("latin-1") for k, v in headers if k in _CARRIED and v is not None}
    return carrier if "traceparent" in carrier else None


class ServiceTracing:
    """A service's tracer and the spans every service makes the same way."""

    def __init__(self, provider: TracerProvider, name: str, *, owned: bool = False) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(name, "0.1.0")
        self._owned = owned

    @classmethod
    def from_settings(
        cls, settings: CommonSettings, provider: TracerProvider | None, name: str
    ) -> Self:
        """With ``provider`` None, one from the ``OTEL_*`` environment (owned: flushed and
        closed by :meth:`shutdown`)."""
        owned = provider is None
        if provider is None:
            from turnout_common.telemetry import setup_tracing

            provider = setup_tracing(settings.service_name)
        return cls(provider, name, owned=owned)

    def shutdown(self) -> None:
        """Flush and close the provider if this object made it."""
        if self._owned:
            shutdown = getattr(self.provider, "shutdown", None)
            if shutdown is not None:
                shutdown()

    @contextmanager
    def active(self, span: Span, *, end: bool = True, record: bool = True) -> Iterator[Span]:
        """``span`` is the current span inside the block, and outbox writes there carry it.
        An exception is recorded on it (ERROR; unless ``record=False``) and re-raised; it
        ends on exit unless ``end=False``."""
        token = MESSAGE_TRACING.set(self)
        try:
            with use_span(
                span, end_on_exit=end, record_exception=record, set_status_on_exception=record
            ):
                yield span
        finally:
            MESSAGE_TRACING.reset(token)

    @staticmethod
    def outgoing_headers() -> dict[str, str]:
        """The current span's W3C trace context for an outgoing HTTP request (no baggage);
        empty if no span is current."""
        carrier: dict[str, str] = {}
        if get_current_span().get_span_context().is_valid:
            _W3C.inject(carrier)
        return carrier

    def message_context(self, topic: str, count: int, key: str | bytes | None) -> dict[str, str]:
        """A PRODUCER ``create <topic>`` span (child of the current one) for ``count``
        messages written now, as W3C headers; empty if no span is current."""
        if not get_current_span().get_span_context().is_valid:
            return {}
        attrs: dict[str, AttributeValue] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "create",
            "messaging.operation.name": "create",
            "messaging.destination.name": topic,
        }
        if count != 1:
            attrs["messaging.batch.message_count"] = count
        elif key is not None:
            text = key if isinstance(key, str) else key.decode(errors="replace")
            attrs["messaging.kafka.message.key"] = text
        span = self.tracer.start_span(f"create {topic}", kind=SpanKind.PRODUCER, attributes=attrs)
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, context=set_span_in_context(span))
        span.end()
        return carrier

    @contextmanager
    def consuming(self, record: ConsumerRecord[Any, Any], follower: str) -> Iterator[Span | None]:
        """A CONSUMER span around handling ``record`` if it carries a trace context."""
        carrier = kafka_carrier(record.headers)
        if carrier is None:
            yield None
            return
        key = record.key
        attrs: dict[str, AttributeValue] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "turnout.follower": follower,
        }
        if isinstance(key, bytes):
            attrs["messaging.kafka.message.key"] = key.decode(errors="replace")
        if record.value is None:
            attrs["messaging.kafka.message.tombstone"] = True
        span = self.tracer.start_span(
            f"process {record.topic}",
            context=propagate.extract(carrier),
            kind=SpanKind.CONSUMER,
            attributes=attrs,
        )
        with self.active(span):
            yield span


def _parent(headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
    carrier = {k.decode(): v.decode("latin-1") for k, v in headers if k in _CARRIED_BYTES}
    return propagate.extract(carrier) if "traceparent" in carrier else None


def _request_attributes(scope: Scope) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
    }
    if scope.get("http_version"):
        attrs["network.protocol.version"] = scope["http_version"]
    server, client = scope.get("server"), scope.get("client")
    if server:
        attrs["server.address"] = server[0]
        if server[1] is not None:
            attrs["server.port"] = server[1]
    if client:
        attrs["client.address"] = client[0]
    agent = next((v for k, v in scope["headers"] if k == b"user-agent"), None)
    if agent:
        attrs["user_agent.original"] = agent.decode("latin-1")
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        attrs["turnout.request_id"] = request_id
    return attrs


class TracingMiddleware:
    """One SERVER span per HTTP request (see the module docstring).

    The route template is read from the scope after the app ran, so install it inside any
    middleware that copies the scope (:class:`turnout_common.asgi.ApiMiddleware`). FastAPI's
    own request spans must stay off (:data:`turnout_common.web.FASTAPI_TELEMETRY`), or a
    global tracer provider would give each request two SERVER spans.
    """

    def __init__(self, app: ASGIApp, tracing: ServiceTracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        span = self.tracing.tracer.start_span(
            method,
            context=_parent(scope["headers"]),
            kind=SpanKind.SERVER,
            attributes=_request_attributes(scope),
        )
        sent = StatusSeen(send, 0)
        raised = False
        try:
            with self.tracing.active(span, end=False):
                await self.app(scope, receive, sent)
        except Exception as exc:  # recorded on the span (ERROR) by active()
            raised = True
            sent.status = sent.status or 500  # what the server answers for an unhandled error
            span.set_attribute("error.type", type(exc).__qualname__)
            raise
        finally:
            route = route_template(scope)
            if route is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            status = sent.status
            if status:
                span.set_attribute("http.response.status_code", status)
            if status >= 500 and not raised:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            span.end()
