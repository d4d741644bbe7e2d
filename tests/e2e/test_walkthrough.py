"""SPEC §5 verbatim, against `turnout up` with local upstream servers and the `openai` SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI, prompt_tokens


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, tuple[FakeOpenAI, LocalServer]]]:
    gpu, cloud = FakeOpenAI(name="gpu-box"), FakeOpenAI(name="openai")
    gpu.behaviour.api_key = "sk-local-12345678"
    cloud.behaviour.api_key = "sk-cloud-abcdefgh"
    servers = {
        "gpu": (gpu, LocalServer(gpu.app).start()),
        "cloud": (cloud, LocalServer(cloud.app).start()),
    }
    yield servers
    for _, srv in servers.values():
        srv.stop()


def wait_for(fn: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@pytest.fixture(scope="module")
def configured(system: Any, upstreams: dict[str, tuple[FakeOpenAI, LocalServer]]) -> dict[str, Any]:
    cfg = system.url("config") + "/api/v1"
    h = system.admin
    gpu_url = upstreams["gpu"][1].url + "/v1"
    cloud_url = upstreams["cloud"][1].url + "/v1"
    with httpx.Client(headers=h, timeout=10) as c:
        r = c.post(
            f"{cfg}/providers",
            json={
                "name": "gpu-box",
                "kind": "vllm",
                "base_url": gpu_url,
                "api_key": "sk-local-12345678",
            },
        )
        assert r.status_code == 201, r.text
        prov = r.json()
        assert prov["api_key_hint"] == "sk-…5678"
        assert "sk-local-12345678" not in r.text
        r = c.post(
            f"{cfg}/providers",
            json={
                "name": "openai",
                "kind": "openai",
                "base_url": cloud_url,
                "api_key": "sk-cloud-abcdefgh",
            },
        )
        assert r.status_code == 201, r.text
        r = c.post(
            f"{cfg}/models",
            json={
                "provider": "gpu-box",
                "upstream_model": "meta-llama/Llama-3.1-8B-Instruct",
                "name": "llama-8b",
                "purposes": ["chat"],
                "context_window": 8192,
                "input_price_per_mtok": 0.10,
                "output_price_per_mtok": 0.20,
                "fallbacks": ["gpt-4o-mini"],
            },
        )
        assert r.status_code == 201, r.text
        llama_id = r.json()["id"]
        r = c.post(
            f"{cfg}/models",
            json={
                "provider": "openai",
                "upstream_model": "gpt-4o-mini",
                "name": "gpt-4o-mini",
                "purposes": ["chat"],
                "input_price_per_mtok": 0.15,
                "output_price_per_mtok": 0.60,
            },
        )
        assert r.status_code == 201, r.text
        r = c.post(
            f"{cfg}/models",
            json={
                "provider": "openai",
                "upstream_model": "text-embedding-3-small",
                "name": "embed-small",
                "purposes": ["embeddings"],
                "input_price_per_mtok": 0.02,
                "output_price_per_mtok": 0,
            },
        )
        assert r.status_code == 201, r.text
        r = c.put(f"{cfg}/routes/chat", json={"model": "llama-8b", "fallbacks": ["gpt-4o-mini"]})
        assert r.status_code in (200, 201), r.text
        r = c.post(
            f"{cfg}/users", json={"id": "alice", "tier": "professional", "monthly_budget_usd": 5}
        )
        assert r.status_code == 201, r.text
        r = c.post(f"{cfg}/keys", json={"user_id": "alice", "name": "laptop"})
        assert r.status_code == 201, r.text
        key = r.json()
    client = OpenAI(base_url=system.url("router") + "/v1", api_key=key["key"], max_retries=0)

    def model_visible() -> bool:
        try:
            return "llama-8b" in {m.id for m in client.models.list()}
        except Exception:
            return False

    wait_for(model_visible)
    return {"key": key, "client": client, "llama_id": llama_id, "system": system}


def test_chat_non_stream_is_routed_and_metered(
    system: Any, configured: dict[str, Any], upstreams: dict[str, Any]
) -> None:
    client: OpenAI = configured["client"]
    raw = client.chat.completions.with_raw_response.create(
        model="llama-8b", messages=[{"role": "user", "content": "hi"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == upstreams["gpu"][0].behaviour.reply
    assert raw.headers["x-turnout-provider"] == "gpu-box"
    assert raw.headers["x-turnout-model"] == "llama-8b"
    assert raw.headers["x-turnout-fallbacks"] == "0"
    request_id = raw.headers["x-request-id"]
    expected_in = prompt_tokens([{"role": "user", "content": "hi"}])
    expected_out = len(upstreams["gpu"][0].behaviour.reply.split())
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == expected_in
    row = wait_for(lambda: _usage_row(system, request_id))
    assert row["input_tokens"] == expected_in
    assert row["output_tokens"] == expected_out
    cost = (
        Decimal(expected_in) * Decimal("0.10") + Decimal(expected_out) * Decimal("0.20")
    ) / Decimal(1_000_000)
    assert Decimal(str(row["cost_usd"])) == cost.quantize(Decimal("1e-9"))
    assert row["provider"] == "gpu-box"


def test_stream_auto_with_power_level(
    system: Any, configured: dict[str, Any], upstreams: dict[str, Any]
) -> None:
    client: OpenAI = configured["client"]
    chunks = list(
        client.chat.completions.create(
            model="auto",
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
            extra_headers={"x-power-level": "eco"},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == upstreams["gpu"][0].behaviour.reply
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(text.split())


def test_embeddings_and_tools(configured: dict[str, Any], upstreams: dict[str, Any]) -> None:
    client: OpenAI = configured["client"]
    emb = client.embeddings.create(model="embed-small", input=["one two", "three"])
    assert len(emb.data) == 2
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages: Any = [{"role": "user", "content": "weather in Paris?"}]
    # the walkthrough's models declare no tools capability: a clear 400, never a silent drop
    with pytest.raises(BadRequestError, match="does not support tools"):
        client.chat.completions.create(model="llama-8b", messages=messages, tools=tools)
    system = configured["system"]
    r = httpx.patch(
        f"{system.url('config')}/api/v1/models/{configured['llama_id']}",
        headers=system.admin,
        json={"capabilities": {"streaming": True, "tools": True}},
    )
    assert r.status_code == 200, r.text
    upstreams["gpu"][0].behaviour.tool_call = True

    def call() -> Any:
        try:
            return client.chat.completions.create(model="llama-8b", messages=messages, tools=tools)
        except BadRequestError:
            return None

    try:
        out = wait_for(call, timeout=5)
    finally:
        upstreams["gpu"][0].behaviour.tool_call = False
    tool_call = out.choices[0].message.tool_calls[0]
    assert tool_call.function.name == "get_weather"
    assert out.choices[0].finish_reason == "tool_calls"


def test_fallback_when_primary_fails(
    system: Any, configured: dict[str, Any], upstreams: dict[str, Any]
) -> None:
    client: OpenAI = configured["client"]
    upstreams["gpu"][0].behaviour.status = 503
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="llama-8b", messages=[{"role": "user", "content": "hello there"}]
        )
    finally:
        upstreams["gpu"][0].behaviour.status = 200
    assert raw.parse().choices[0].message.content == upstreams["cloud"][0].behaviour.reply
    assert raw.headers["x-turnout-provider"] == "openai"
    assert int(raw.headers["x-turnout-fallbacks"]) >= 1


def test_credits_health_and_revocation(system: Any, configured: dict[str, Any]) -> None:
    h = system.admin
    credits = wait_for(lambda: _get(system.url("metering") + "/api/v1/credits/alice", h))
    spent = Decimal(str(credits["spent_usd"]))
    assert spent > 0
    assert Decimal(str(credits["limit_usd"])) == 5
    assert Decimal(str(credits["remaining_usd"])) == 5 - spent
    assert credits["ledger_consistent"] is True

    def both_probed() -> dict[str, Any] | None:
        health = _get(system.url("health") + "/api/v1/health/providers", h)
        by_name = {p["name"]: p for p in (health or {}).get("data", [])}
        if {"gpu-box", "openai"} <= set(by_name):
            return by_name
        return None

    by_name = wait_for(both_probed)
    assert by_name["gpu-box"]["kind"] == "vllm"
    assert by_name["gpu-box"]["status"] in {"healthy", "degraded", "unknown"}
    key_id = configured["key"]["id"]
    r = httpx.delete(system.url("config") + f"/api/v1/keys/{key_id}", headers=h, timeout=10)
    assert r.status_code in (200, 204), r.text
    revoked_at = time.monotonic()
    client: OpenAI = configured["client"]

    def refused() -> bool:
        try:
            client.models.list()
        except Exception as exc:
            return getattr(exc, "status_code", None) == 401
        return False

    wait_for(refused, timeout=5, interval=0.02)
    assert time.monotonic() - revoked_at < 1.0


def _get(url: str, headers: dict[str, str]) -> Any:
    r = httpx.get(url, headers=headers, timeout=10)
    return r.json() if r.status_code == 200 else None


def _usage_row(system: Any, request_id: str) -> dict[str, Any] | None:
    data = _get(system.url("metering") + "/api/v1/usage?user_id=alice&limit=100", system.admin)
    if not data:
        return None
    for row in data.get("items", data.get("data", [])):
        if row.get("request_id") == request_id:
            return row
    return None
