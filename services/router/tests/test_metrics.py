"""The router's hand-rendered /metrics: valid exposition, GenAI names from usage records."""

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from turnout_router.metrics import Metrics
from turnout_router.record import Attempt, UsageRecord


def attempt(provider: str, upstream: str, status: int, error: str | None, ms: float) -> Attempt:
    return {"provider_id": "p-" + provider, "provider": provider, "model": "llama-8b",
            "upstream_model": upstream, "deployment_id": "d-1", "status": status, "error": error,
            "latency_ms": ms}  # fmt: skip


def record(**over: Any) -> UsageRecord:
    rec: dict[str, Any] = {
        "request_id": "req-1",
        "started_at": 1.8e9,
        "purpose": "chat",
        "requested_model": "auto",
        "model": "llama-8b",
        "provider": "gpu-box",
        "input_tokens": 12,
        "output_tokens": 30,
        "latency_ms": 420.0,
        "ttft_ms": 80.0,
        "status": 200,
        "outcome": "success",
        "error_code": None,
        "fallbacks": 1,
        "attempts": [
            attempt("openai", "gpt-4o-mini", 503, "bad_gateway", 15.0),
            attempt("gpu-box", "meta/llama", 429, "provider_rate_limited", 0.0),
            attempt("gpu-box", "meta/llama", 200, None, 390.0),
        ],
    }
    rec.update(over)
    return UsageRecord(**rec)


def samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = m.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_usage_records_feed_the_gen_ai_series() -> None:
    m = Metrics()
    m.observe_usage(record())
    m.observe_usage(
        record(model=None, provider=None, status=502, outcome="upstream_error",
               error_code="bad_gateway", ttft_ms=None, fallbacks=0,
               attempts=record().attempts[:1])
    )  # fmt: skip
    got = samples(m)
    served = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "llama-8b"}
    ok = frozenset({**served, "gen_ai_provider_name": "gpu-box", "error_type": ""}.items())
    failed = frozenset({**served, "gen_ai_provider_name": "", "error_type": "bad_gateway"}.items())
    assert got["gen_ai_server_request_duration_seconds_count", ok] == 1
    assert got["gen_ai_server_request_duration_seconds_sum", ok] == 0.42
    assert got["gen_ai_server_request_duration_seconds_count", failed] == 1
    ttft = frozenset({**served, "gen_ai_provider_name": "gpu-box"}.items())
    assert got["gen_ai_server_time_to_first_token_seconds_count", ttft] == 1
    calls = {
        dict(labels)["error_type"]: value
        for (name, labels), value in got.items()
        if name == "gen_ai_client_operation_duration_seconds_count"
    }
    assert calls == {"bad_gateway": 2, "": 1}  # the rate-limited skip made no call
    tokens = {
        dict(labels)["gen_ai_token_type"]: value
        for (name, labels), value in got.items()
        if name == "gen_ai_client_token_usage_sum"
    }
    assert tokens == {"input": 12, "output": 30}
    assert got["turnout_fallbacks_total", frozenset({("gen_ai_request_model", "llama-8b")})] == 1


def test_http_requests_errors_and_gauges() -> None:
    m = Metrics()
    m.observe("/v1/chat/completions", 200, 0.03)
    m.observe("/v1/chat/completions", 200, 0.07)
    m.failed_attempt("gpu-box", "upstream_timeout")
    m.gauges["turnout_router_usage_pending"] = lambda: 3
    got = samples(m)
    route = {"service": "router", "method": "POST", "route": "/v1/chat/completions"}
    assert got["turnout_http_requests_total", frozenset({**route, "status": "200"}.items())] == 2
    le = frozenset({**route, "le": "0.05"}.items())
    assert got["turnout_http_request_duration_seconds_bucket", le] == 1
    errors = frozenset(
        {"gen_ai_provider_name": "gpu-box", "error_type": "upstream_timeout"}.items()
    )
    assert got["turnout_upstream_errors_total", errors] == 1
    assert got["turnout_router_usage_pending", frozenset()] == 3


def test_label_values_are_escaped() -> None:
    m = Metrics()
    m.failed_attempt('we"ird\\name\n', "x")
    (labels,) = [dict(lbl) for name, lbl in samples(m) if name == "turnout_upstream_errors_total"]
    assert labels["gen_ai_provider_name"] == 'we"ird\\name\n'
