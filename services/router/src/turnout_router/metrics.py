"""Prometheus metrics kept cheap: plain dicts of counters and histograms, rendered on demand.

Names follow ``deploy/grafana/turnout.json`` and the OpenTelemetry GenAI semantic conventions
(dots become underscores, seconds as the unit): ``gen_ai_server_request_duration_seconds``,
``gen_ai_server_time_to_first_token_seconds``, ``gen_ai_client_operation_duration_seconds``
and ``gen_ai_client_token_usage`` come from each request's usage record
(:meth:`Metrics.observe_usage`); ``turnout_http_*`` from :meth:`Metrics.observe`.
``gen_ai_request_model`` is the public model name the request was routed to (bounded by the
config, unlike the free text a client sends); empty if it was refused before routing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from turnout_router.record import UsageRecord

SERVICE = "router"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# the semantic conventions' advice for gen_ai.* histograms
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
OPERATIONS = {
    "chat": "chat",
    "completion": "text_completion",
    "embeddings": "embeddings",
    "reranking": "rerank",
}
OP, MODEL, PROVIDER, ERROR = (
    "gen_ai_operation_name",
    "gen_ai_request_model",
    "gen_ai_provider_name",
    "error_type",
)
SKIPPED = frozenset({"provider_rate_limited", "no_adapter", "provider_key_unavailable"})
"""Attempt errors of candidates that were never called (no upstream operation to time)."""

Key = tuple[str, ...]


def _labels(names: tuple[str, ...], values: Key) -> str:
    inner = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Counters:
    """One counter family: values by label tuple."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[Key, float] = {}

    def inc(self, key: Key, amount: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def render(self, out: list[str]) -> None:
        out += [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} counter"]
        for key, n in sorted(self.values.items()):
            out.append(f"{self.name}{_labels(self.labels, key)} {n:g}")


class Histograms:
    """One histogram family: per label tuple, bucket counts (+Inf last) and the sum."""

    def __init__(
        self, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name, self.doc, self.labels, self.buckets = name, doc, labels, buckets
        self.values: dict[Key, list[float]] = {}

    def observe(self, key: Key, value: float) -> None:
        h = self.values.get(key)
        if h is None:
            h = self.values[key] = [0.0] * (len(self.buckets) + 2)  # buckets, +Inf, sum
        h[bisect_left(self.buckets, value)] += 1
        h[-1] += value

    def render(self, out: list[str]) -> None:
        name, names = self.name, self.labels
        out += [f"# HELP {name} {self.doc}", f"# TYPE {name} histogram"]
        for key, h in sorted(self.values.items()):
            acc = 0.0
            for i, le in enumerate((*self.buckets, "+Inf")):
                acc += h[i]
                out.append(f"{name}_bucket{_labels((*names, 'le'), (*key, str(le)))} {acc:g}")
            out.append(f"{name}_sum{_labels(names, key)} {h[-1]:.6f}")
            out.append(f"{name}_count{_labels(names, key)} {acc:g}")


class Metrics:
    """The router's series; gauges are callbacks read at scrape time."""

    def __init__(self) -> None:
        self.http_requests = Counters(
            "turnout_http_requests_total",
            "HTTP requests by service, method, route and status.",
            ("service", "method", "route", "status"),
        )
        self.http_duration = Histograms(
            "turnout_http_request_duration_seconds",
            "HTTP request duration by service, method and route.",
            ("service", "method", "route"),
            BUCKETS,
        )
        self.request_duration = Histograms(
            "gen_ai_server_request_duration_seconds",
            "Data-plane request duration, fallbacks included (gen_ai.server.request.duration).",
            (OP, MODEL, PROVIDER, ERROR),
            DURATION_BUCKETS,
        )
        self.ttft = Histograms(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first streamed chunk (gen_ai.server.time_to_first_token).",
            (OP, MODEL, PROVIDER),
            TTFT_BUCKETS,
        )
        self.operation_duration = Histograms(
            "gen_ai_client_operation_duration_seconds",
            "Duration of each upstream call (gen_ai.client.operation.duration).",
            (OP, PROVIDER, "gen_ai_response_model", ERROR),
            DURATION_BUCKETS,
        )
        self.token_usage = Histograms(
            "gen_ai_client_token_usage",
            "Tokens per request by type (gen_ai.client.token.usage).",
            (OP, "gen_ai_token_type", MODEL, PROVIDER),
            TOKEN_BUCKETS,
        )
        self.upstream_errors = Counters(
            "turnout_upstream_errors_total",
            "Failed upstream attempts by provider and error.",
            (PROVIDER, ERROR),
        )
        self.fallbacks = Counters(
            "turnout_fallbacks_total",
            "Requests served after at least one fallback.",
            (MODEL,),
        )
        self.gauges: dict[str, Callable[[], float]] = {}
        self.counters: dict[str, Callable[[], float]] = {}  # plain counters read at scrape

    def observe(self, path: str, status: int, seconds: float, method: str = "POST") -> None:
        """One data-plane HTTP request (``path`` is one of the fixed data-plane routes)."""
        self.http_requests.inc((SERVICE, method, path, str(status)))
        self.http_duration.observe((SERVICE, method, path), seconds)

    def failed_attempt(self, provider: str, error_type: str = "") -> None:
        self.upstream_errors.inc((provider, error_type))

    def observe_usage(self, record: UsageRecord) -> None:
        """The GenAI series of one request, from its usage record (``RequestContext.record``)."""
        op = OPERATIONS.get(record.purpose, str(record.purpose))
        attempts = record.attempts
        model = record.model or (attempts[-1]["model"] if attempts else "")
        provider = record.provider or ""
        status, outcome = record.status, record.outcome
        error = ""
        if status >= 400 or outcome != "success":
            error = record.error_code or outcome or str(status)
        self.request_duration.observe((op, model, provider, error), record.latency_ms / 1000)
        if record.ttft_ms is not None:
            self.ttft.observe((op, model, provider), record.ttft_ms / 1000)
        for a in attempts:
            if a["error"] not in SKIPPED:
                key = (op, a["provider"], a["upstream_model"], a["error"] or "")
                self.operation_duration.observe(key, a["latency_ms"] / 1000)
        if record.model is not None:
            self.token_usage.observe((op, "input", model, provider), record.input_tokens)
            self.token_usage.observe((op, "output", model, provider), record.output_tokens)
            if record.fallbacks:
                self.fallbacks.inc((model,))

    def render(self) -> bytes:
        out: list[str] = []
        for family in (
            self.http_requests,
            self.http_duration,
            self.request_duration,
            self.ttft,
            self.operation_duration,
            self.token_usage,
            self.upstream_errors,
            self.fallbacks,
        ):
            family.render(out)
        for name, fn in sorted(self.gauges.items()):
            out += [f"# TYPE {name} gauge", f"{name} {fn():g}"]
        for name, fn in sorted(self.counters.items()):
            out += [f"# TYPE {name} counter", f"{name} {fn():g}"]
        return ("\n".join(out) + "\n").encode()
