"""OpenTelemetry for the health worker (imported only when it traces).

* ``probe {kind}`` — CLIENT, one per active probe of a provider (a trial probe included), a
  root span: the provider id, name and kind, the server probed, whether it was a trial, then
  the outcome (``turnout.health.status``, ``turnout.probe.verdict``), the latency and the
  HTTP status; ERROR when the probe failed. It is the current span while the result is
  stored, so the health event a probe causes carries its context (a ``create
  turnout.health.v1`` span, through the outbox) and the router's and config-api's
  ``process turnout.health.v1`` spans join its trace.
* the HTTP API's SERVER spans and the config follower's CONSUMER spans are
  :class:`~turnout_common.tracing.ServiceTracing`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from turnout_common.tracing import ServiceTracing
from turnout_health.probes import ProbeResult, default_base_url
from turnout_health.registry import ProviderConfig

Run = Callable[[ProviderConfig, bool], Awaitable[ProbeResult]]


class HealthTracing(ServiceTracing):
    async def probe(self, cfg: ProviderConfig, trial: bool, run: Run) -> ProbeResult:
        """``run(cfg, trial)`` (probe and store the result) inside the probe's span."""
        attrs: dict[str, AttributeValue] = {
            "turnout.provider.id": cfg.id,
            "turnout.provider.name": cfg.name,
            "turnout.provider.kind": cfg.kind,
            "turnout.probe.trial": trial,
        }
        host = _host(cfg.base_url or default_base_url(cfg.kind) or "")
        if host:
            attrs["server.address"] = host
        span = self.tracer.start_span(f"probe {cfg.kind}", kind=SpanKind.CLIENT, attributes=attrs)
        with self.active(span):
            result = await run(cfg, trial)
            span.set_attributes(_outcome(result))
            if result.verdict == "failure":
                span.set_status(Status(StatusCode.ERROR, result.reason[:200]))
        return result


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _outcome(result: ProbeResult) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        "turnout.health.status": result.status,
        "turnout.probe.verdict": result.verdict,
        "turnout.probe.reason": result.reason,
    }
    if result.latency_ms is not None:
        attrs["turnout.probe.latency_ms"] = result.latency_ms
    if result.http_status is not None:
        attrs["http.response.status_code"] = result.http_status
    if result.verdict == "failure":
        attrs["error.type"] = str(result.http_status) if result.http_status else "probe_failed"
    return attrs
