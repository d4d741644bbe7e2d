"""Probe requests per kind, and classification against real local servers."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import start_fake_openai
from turnout_health.probes import classify, probe_requests, run_probe


@pytest.mark.parametrize(
    ("kind", "base_url", "urls"),
    [
        ("vllm", "http://gpu:8000/v1", ["http://gpu:8000/health", "http://gpu:8000/v1/models"]),
        ("ollama", "http://box:11434", ["http://box:11434/api/tags"]),
        ("ollama", "http://box:11434/v1/", ["http://box:11434/api/tags"]),
        # one probe plan for config-api's test and the health-worker (the two copies disagreed
        # before turnout_common.provider_kinds): llama.cpp's /health, then its model list
        ("llamacpp", "http://cpp:8080/v1", ["http://cpp:8080/health", "http://cpp:8080/v1/models"]),
        ("openai_compatible", "http://x/v1", ["http://x/v1/models"]),
        ("groq", None, ["https://api.groq.com/openai/v1/models"]),
        ("openai", None, ["https://api.openai.com/v1/models"]),
        ("anthropic", None, ["https://api.anthropic.com/v1/models"]),
        ("anthropic", "https://proxy/v1", ["https://proxy/v1/models"]),
        ("google", None, ["https://generativelanguage.googleapis.com/v1beta/models"]),
        ("cohere", None, ["https://api.cohere.com/v1/models"]),
    ],
)
def test_probe_urls(kind: str, base_url: str | None, urls: list[str]) -> None:
    assert [r.url for r in probe_requests(kind, base_url, "k-secret")] == urls


def test_probe_auth_headers() -> None:
    assert probe_requests("anthropic", None, "k1")[0].headers == {
        "anthropic-version": "2023-06-01",
        "x-api-key": "k1",
    }
    assert probe_requests("google", None, "k2")[0].headers == {"x-goog-api-key": "k2"}
    assert probe_requests("cohere", None, "k3")[0].headers == {"Authorization": "Bearer k3"}
    assert probe_requests("vllm", "http://a/v1", None)[0].headers == {}
    with pytest.raises(ValueError, match="needs a base_url"):
        probe_requests("vllm", None, None)


@pytest.mark.parametrize(
    ("code", "latency", "status", "verdict"),
    [
        (200, 10.0, "healthy", "success"),
        (200, 5000.0, "degraded", "success"),
        (429, 10.0, "degraded", "success"),
        (401, 10.0, "auth_failed", "neutral"),
        (403, 10.0, "auth_failed", "neutral"),
        (503, 10.0, "down", "failure"),
        (404, 10.0, "unknown", "neutral"),
    ],
)
def test_classify(code: int, latency: float, status: str, verdict: str) -> None:
    result = classify(code, latency, slow_ms=2000)
    assert (result.status, result.verdict, result.http_status) == (status, verdict, code)


async def test_run_probe_against_a_real_server() -> None:
    fake, server = start_fake_openai("probe")
    reqs = probe_requests("vllm", server.url + "/v1", None)
    try:
        async with httpx.AsyncClient() as client:
            ok = await run_probe(client, reqs, timeout_s=1, slow_ms=2000)
            assert ok.status == "healthy" and ok.latency_ms is not None
            fake.behaviour.status = 429
            assert (await run_probe(client, reqs, timeout_s=1, slow_ms=2000)).status == "degraded"
            fake.behaviour.status, fake.behaviour.delay_s = 200, 0.5
            slow = await run_probe(client, reqs, timeout_s=2, slow_ms=100)
            assert slow.status == "degraded" and slow.reason.startswith("slow")
            timed_out = await run_probe(client, reqs, timeout_s=0.1, slow_ms=2000)
            assert timed_out.status == "down" and "timeout" in timed_out.reason
            fake.behaviour.delay_s = 0
            server.stop()
            gone = await run_probe(client, reqs, timeout_s=1, slow_ms=2000)
            assert gone.status == "down" and gone.reason.startswith("connect error")
    finally:
        server.stop()


async def test_cloud_probe_sends_the_key_only_in_headers() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    async def models(request: web.Request) -> web.Response:
        seen.append((str(request.url), dict(request.headers)))
        return web.json_response({"models": []})

    app = web.Application()
    app.router.add_get("/v1beta/models", models)
    with LocalServer(app) as srv:
        async with httpx.AsyncClient() as client:
            reqs = probe_requests("google", srv.url, "AIza-secret-key")
            result = await run_probe(client, reqs, timeout_s=1, slow_ms=2000)
    assert result.status == "healthy"
    url, headers = seen[0]
    assert "AIza" not in url and headers["x-goog-api-key"] == "AIza-secret-key"
    assert "AIza" not in result.reason
