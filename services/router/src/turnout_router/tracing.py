"""OpenTelemetry for the data plane: one trace per request, carried on to metering.

Spans (W3C trace context throughout):

* ``POST /v1/…`` — SERVER, one per request; its parent is the client's ``traceparent`` if it
  sent one. HTTP attributes plus the GenAI semantic conventions (``gen_ai.operation.name``,
  ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.provider.name``,
  ``gen_ai.usage.input_tokens`` / ``output_tokens``) and ``turnout.*`` (request id, deployment,
  provider, fallbacks, attempts, outcome, …), all set from the usage record when it is built.
* ``{operation} {upstream model}`` — CLIENT, one per upstream attempt (fallbacks included);
  its ``traceparent`` goes to the upstream in the HTTP request (W3C trace context only: a
  client's baggage is not forwarded to providers). A failed attempt ends at once
  with ``error.type``; the one that served stays open until the response is complete (the
  whole stream, for streams) and gets the token usage.
* ``create turnout.usage.v1`` — PRODUCER, the creation context of the request's usage record:
  it is injected into the record (``_trace``), which the emitter sends as Kafka message
  headers (and keeps in its spool file); metering's ``process`` span is its child.
* ``process turnout.config.v1`` / ``turnout.health.v1`` / ``turnout.credit.v1`` — CONSUMER,
  one per followed record that carries a trace context (config-api's, health-worker's and
  metering's outbox writes do when they trace), as that context's child. Followers are off
  the request path.

Off by default. :class:`RouterTracing` exists only when a tracer provider is injected
(``RouterApp(settings, tracer_provider=…)``) or the environment asks for tracing
(:meth:`~turnout_common.settings.CommonSettings.tracing_requested`); otherwise this module and
OpenTelemetry are never imported, and a request pays three ``is None`` checks (app.handle,
Gateway.attempts, Gateway.finish). The per-request state lives on the request context
(``ctx.trace``), not in context variables: Granian may run every request in one shared context.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from turnout_common.errors import TurnoutError
from turnout_common.tracing import ServiceTracing
from turnout_router.adapters.base import Adapter, PreparedRequest
from turnout_router.routing import Candidate

if TYPE_CHECKING:
    from turnout_router.context import RequestContext
    from turnout_router.record import UsageRecord
    from turnout_router.settings import RouterSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
Call = Callable[[Adapter, PreparedRequest, Candidate, float], Awaitable[T]]

OPERATIONS = {
    "chat": "chat",
    "completion": "text_completion",
    "embeddings": "embeddings",
    "reranking": "rerank",
}
"""Router purpose → ``gen_ai.operation.name``."""

PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "groq": "groq",
}
"""Provider kind → well-known ``gen_ai.provider.name``; other kinds (vllm, ollama, …) as is."""


def provider_name(kind: str) -> str:
    return PROVIDER_NAMES.get(kind, kind)


class _HeaderGetter(Getter[Any]):
    """Reads W3C headers from Granian's RSGI headers (or any mapping with ``get``)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: Any) -> list[str]:
        return list(carrier.keys())


_GETTER = _HeaderGetter()
_W3C = TraceContextTextMapPropagator()  # upstreams get traceparent only, never baggage


class RouterTracing(ServiceTracing):
    """The tracer and the hooks that open a request's trace (see the module docstring); the
    followers' CONSUMER spans are :class:`ServiceTracing`'s."""

    def __init__(self, provider: TracerProvider, *, usage_topic: str, owned: bool = False) -> None:
        super().__init__(provider, "turnout_router", owned=owned)
        self.usage_topic = usage_topic

    @classmethod
    def create(
        cls, settings: RouterSettings, provider: TracerProvider | None = None
    ) -> RouterTracing:
        """With ``provider`` None, one from the ``OTEL_*`` environment (owned: flushed on
        :meth:`shutdown`)."""
        owned = provider is None
        if provider is None:
            from turnout_common.telemetry import setup_tracing

            provider = setup_tracing(settings.service_name)
        return cls(provider, usage_topic=settings.usage_topic, owned=owned)

    def begin(self, ctx: RequestContext, headers: Any) -> None:
        """Open the request's SERVER span (child of the client's ``traceparent``, if any).
        Never raises: without a span the request is simply not traced."""
        try:
            self._begin(ctx, headers)
        except Exception:
            log.exception("tracing: could not start a span for %s", ctx.request_id)

    def _begin(self, ctx: RequestContext, headers: Any) -> None:
        parent: Context | None = None
        if headers.get("traceparent") is not None:
            parent = propagate.extract(headers, getter=_GETTER)
        attrs: dict[str, AttributeValue] = {
            "http.request.method": "POST",
            "http.route": ctx.path,
            "url.path": ctx.path,
            "gen_ai.operation.name": OPERATIONS.get(ctx.purpose, ctx.purpose),
            "turnout.request_id": ctx.request_id,
            "turnout.source": ctx.source,
        }
        agent = headers.get("user-agent")
        if agent:
            attrs["user_agent.original"] = agent
        span = self.tracer.start_span(
            f"POST {ctx.path}", context=parent, kind=SpanKind.SERVER, attributes=attrs
        )
        ctx.trace = RequestTrace(self, span)


class RequestTrace:
    """One request's spans; ``ctx.trace`` while tracing is on."""

    __slots__ = ("_served", "attempts", "owner", "parent", "span")

    def __init__(self, owner: RouterTracing, span: Span) -> None:
        self.owner = owner
        self.span = span
        self.parent = set_span_in_context(span)
        self._served: Span | None = None
        self.attempts = 0

    # --- upstream attempts --------------------------------------------------------------
    def wrap(self, ctx: RequestContext, call: Call[T]) -> Call[T]:
        """``call`` with a CLIENT span around each upstream attempt."""

        async def traced(adapter: Adapter, req: PreparedRequest, cand: Candidate, t: float) -> T:
            span = self._attempt_span(ctx, req, cand)
            _W3C.inject(req.headers, context=set_span_in_context(span))
            try:
                result = await call(adapter, req, cand, t)
            except BaseException as exc:
                code = exc.code if isinstance(exc, TurnoutError) else None
                span.set_attribute("error.type", code or type(exc).__qualname__)
                if isinstance(exc, TurnoutError):
                    span.set_attribute("turnout.error.status", exc.status)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                span.end()
                raise
            if self._served is not None:  # not expected: one attempt serves
                self._served.end()
            self._served = span
            return result

        return traced

    def _attempt_span(self, ctx: RequestContext, req: PreparedRequest, cand: Candidate) -> Span:
        d, p = cand.deployment, cand.provider
        self.attempts += 1
        op = OPERATIONS.get(ctx.purpose, ctx.purpose)
        url = urlsplit(req.url)
        port = url.port or (443 if url.scheme == "https" else 80)
        host = url.hostname or ""
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": op,
            "gen_ai.request.model": d.upstream_model,
            "gen_ai.provider.name": provider_name(p.kind),
            "gen_ai.system": provider_name(p.kind),
            "http.request.method": req.method,
            "server.address": host,
            "server.port": port,
            "url.full": f"{url.scheme}://{netloc}{url.path}",  # no query: keys may sit there
            "turnout.attempt": self.attempts,
            "turnout.provider.id": p.id,
            "turnout.provider.name": p.name,
            "turnout.deployment.id": d.id,
            "turnout.model": d.name,
            "turnout.byok": cand.byok,
        }
        return self.owner.tracer.start_span(
            f"{op} {d.upstream_model}", context=self.parent, kind=SpanKind.CLIENT, attributes=attrs
        )

    # --- completion ---------------------------------------------------------------------
    def finish(self, ctx: RequestContext, record: UsageRecord) -> dict[str, str] | None:
        """Attributes from the usage record, the record's PRODUCER span, then end every span;
        returns the PRODUCER span's context, which the emitter sends as the record's Kafka
        headers. Never raises: the record must go out."""
        try:
            return self._finish(ctx, record)
        except Exception:
            log.exception("tracing: could not finish the spans of %s", ctx.request_id)
            for span in (self._served, self.span):
                if span is not None and span.is_recording():
                    span.end()
            return None

    def _finish(self, ctx: RequestContext, rec: UsageRecord) -> dict[str, str] | None:
        span, served = self.span, self._served
        status: int = rec.status
        failed = rec.outcome != "success"
        if span.is_recording():
            span.set_attributes(_server_attributes(ctx, rec))
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, rec.error_code or str(status)))
        if served is not None:
            self._served = None
            if served.is_recording():
                served.set_attributes(_usage_attributes(rec))
                if failed and status >= 500:  # e.g. the stream broke after the first byte
                    served.set_attribute("error.type", rec.error_code or str(status))
                    served.set_status(Status(StatusCode.ERROR, rec.error_code or ""))
            served.end()
        owner = self.owner
        producer = owner.tracer.start_span(
            f"create {owner.usage_topic}",
            context=self.parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "create",
                "messaging.operation.name": "create",
                "messaging.destination.name": owner.usage_topic,
                "messaging.kafka.message.key": ctx.request_id,
                "turnout.request_id": ctx.request_id,
            },
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=set_span_in_context(producer))
        producer.end()
        span.end()
        return carrier or None


def _usage_attributes(rec: UsageRecord) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        "gen_ai.usage.input_tokens": rec.input_tokens,
        "gen_ai.usage.output_tokens": rec.output_tokens,
    }
    if rec.cached_tokens:
        attrs["gen_ai.usage.cache_read.input_tokens"] = rec.cached_tokens
    if rec.upstream_model:
        attrs["gen_ai.response.model"] = rec.upstream_model
    return attrs


def _server_attributes(ctx: RequestContext, rec: UsageRecord) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        "http.response.status_code": rec.status,
        "turnout.outcome": rec.outcome,
        "turnout.fallbacks": rec.fallbacks,
        "turnout.attempts": len(rec.attempts),
        "turnout.stream": rec.stream,
    }
    optional = {
        "gen_ai.request.model": rec.requested_model,
        "gen_ai.response.model": rec.model,  # the public name the response carries
        "error.type": rec.error_code,
        "turnout.user.id": rec.user_id,
        "turnout.key.id": rec.key_id,
        "turnout.upstream_model": rec.upstream_model,
        "turnout.provider.id": rec.provider_id,
        "turnout.provider.name": rec.provider,
        "turnout.deployment.id": rec.deployment_id,
        "turnout.ttft_ms": rec.ttft_ms,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if ctx.served is not None:
        name = provider_name(ctx.served.provider.kind)
        attrs["gen_ai.provider.name"] = name
        attrs["gen_ai.system"] = name  # the attribute's older name, still read by many tools
        attrs["turnout.byok"] = rec.byok
        attrs["turnout.usage.estimated"] = rec.estimated
        attrs["gen_ai.usage.input_tokens"] = rec.input_tokens
        attrs["gen_ai.usage.output_tokens"] = rec.output_tokens
        if rec.cached_tokens:
            attrs["gen_ai.usage.cache_read.input_tokens"] = rec.cached_tokens
    return attrs
