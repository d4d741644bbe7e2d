"""SPEC §5 verbatim, against `turnout up` with local upstream servers and the `openai` SDK."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from turnout_common.testing.fake_providers import FakeCohere
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI, count_words, prompt_tokens
from turnout_common.testing.waiting import wait_for as poll_until

# Catalog prices of the extra deployments (USD per 1M tokens). The completion model's prices
# make its cost end in exactly half a nano-USD (CONTRACTS: half-up, not banker's rounding);
# the rerank price has 7 decimals, so the router prices it with Decimal, not micro-USD ints.
BASE_IN, BASE_OUT = Decimal("0.0005"), Decimal("0.002")
RERANK_IN = Decimal("0.0250005")


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, tuple[Any, LocalServer]]]:
    gpu, cloud = FakeOpenAI(name="gpu-box"), FakeOpenAI(name="openai")
    gpu.behaviour.api_key = "sk-local-12345678"
    cloud.behaviour.api_key = "sk-cloud-abcdefgh"
    cohere = FakeCohere(name="cohere")
    cohere.behaviour.api_key = "co-test-key-9876"
    servers: dict[str, tuple[Any, LocalServer]] = {
        "gpu": (gpu, LocalServer(gpu.app).start()),
        "cloud": (cloud, LocalServer(cloud.app).start()),
        "cohere": (cohere, LocalServer(cohere.app).start()),
    }
    yield servers
    for _, srv in servers.values():
        srv.stop()


# this module's deadline and poll interval
wait_for = functools.partial(poll_until, timeout=15.0, interval=0.1)


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
        r = c.post(
            f"{cfg}/models",
            json={
                "provider": "gpu-box",
                "upstream_model": "meta-llama/Llama-3.1-8B",
                "name": "llama-8b-base",
                "purposes": ["completion"],
                "input_price_per_mtok": str(BASE_IN),
                "output_price_per_mtok": str(BASE_OUT),
            },
        )
        assert r.status_code == 201, r.text
        r = c.post(
            f"{cfg}/providers",
            json={
                "name": "cohere",
                "kind": "cohere",
                "base_url": upstreams["cohere"][1].url,
                "api_key": "co-test-key-9876",
            },
        )
        assert r.status_code == 201, r.text
        r = c.post(
            f"{cfg}/models",
            json={
                "provider": "cohere",
                "upstream_model": "rerank-fake",
                "name": "rerank-fast",
                "purposes": ["reranking"],
                "input_price_per_mtok": str(RERANK_IN),
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
            return {"llama-8b", "llama-8b-base", "rerank-fast"} <= {
                m.id for m in client.models.list()
            }
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
    assert completion.usage.completion_tokens == expected_out
    row = wait_for(lambda: _usage_row(system, request_id))
    assert row["input_tokens"] == expected_in
    assert row["output_tokens"] == expected_out
    assert (row["estimated"], row["stream"], row["status"]) == (False, False, 200)
    assert Decimal(str(row["cost_usd"])) == _cost(
        expected_in, expected_out, Decimal("0.10"), Decimal("0.20")
    )
    assert row["provider"] == "gpu-box"
    assert (row["model"], row["upstream_model"]) == ("llama-8b", "meta-llama/Llama-3.1-8B-Instruct")
    assert (row["purpose"], row["fallbacks"], row["key_id"]) == ("chat", 0, configured["key"]["id"])


def test_stream_auto_with_power_level(
    system: Any, configured: dict[str, Any], upstreams: dict[str, Any]
) -> None:
    client: OpenAI = configured["client"]
    messages: Any = [{"role": "user", "content": "hi there, stream please"}]
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        stream=True,
        messages=messages,
        stream_options={"include_usage": True},
        extra_headers={"x-power-level": "eco"},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-turnout-provider"] == "gpu-box"
    assert raw.headers["x-turnout-model"] == "llama-8b"
    assert raw.headers["x-turnout-fallbacks"] == "0"
    request_id = raw.headers["x-request-id"]
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == upstreams["gpu"][0].behaviour.reply
    expected_in, expected_out = prompt_tokens(messages), count_words(text)
    # the usage chunk the client asked for: last, no choices, the upstream's exact counts
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == expected_in
    assert chunks[-1].usage.completion_tokens == expected_out
    assert all(c.usage is None for c in chunks[:-1])
    row = wait_for(lambda: _usage_row(system, request_id))
    assert (row["input_tokens"], row["output_tokens"]) == (expected_in, expected_out)
    assert row["estimated"] is False
    assert row["stream"] is True
    assert (row["model"], row["requested_model"], row["provider"]) == (
        "llama-8b",
        "auto",
        "gpu-box",
    )
    # why it served: the chat route (no routing rule matched), for an eco request
    assert (row["route"], row["power_level"], row["task_type"]) == ("route:chat", "eco", None)
    assert row["ttft_ms"] is not None and row["ttft_ms"] > 0
    assert Decimal(str(row["cost_usd"])) == _cost(
        expected_in, expected_out, Decimal("0.10"), Decimal("0.20")
    )


def test_stream_without_include_usage_is_still_metered_exactly(
    system: Any, configured: dict[str, Any], upstreams: dict[str, Any]
) -> None:
    client: OpenAI = configured["client"]
    cloud: FakeOpenAI = upstreams["cloud"][0]
    messages: Any = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "count to three"},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", stream=True, messages=messages
    )
    assert raw.headers["x-turnout-provider"] == "openai"
    assert raw.headers["x-turnout-model"] == "gpt-4o-mini"
    request_id = raw.headers["x-request-id"]
    chunks = list(raw.parse())
    # the client did not ask for usage: no chunk carries it, none is a choices-less usage chunk
    assert chunks
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == cloud.behaviour.reply
    assert chunks[-1].choices[0].finish_reason == "stop"
    # ...but the router asked the upstream for it, so metering has the exact counts
    upstream_body = cloud.requests[-1]["body"]
    assert upstream_body["stream"] is True
    assert upstream_body["stream_options"] == {"include_usage": True}
    expected_in, expected_out = prompt_tokens(messages), count_words(cloud.behaviour.reply)
    row = wait_for(lambda: _usage_row(system, request_id))
    assert (row["input_tokens"], row["output_tokens"]) == (expected_in, expected_out)
    assert row["estimated"] is False
    assert row["stream"] is True
    assert Decimal(str(row["cost_usd"])) == _cost(
        expected_in, expected_out, Decimal("0.15"), Decimal("0.60")
    )


def test_completions_endpoint(
    system: Any, configured: dict[str, Any], upstreams: dict[str, Any]
) -> None:
    client: OpenAI = configured["client"]
    gpu: FakeOpenAI = upstreams["gpu"][0]
    raw = client.completions.with_raw_response.create(model="llama-8b-base", prompt="Once")
    completion = raw.parse()
    assert completion.choices[0].text == gpu.behaviour.reply
    assert completion.model == "llama-8b-base"
    assert gpu.requests[-1]["path"] == "/v1/completions"
    assert gpu.requests[-1]["body"]["model"] == "meta-llama/Llama-3.1-8B"
    assert raw.headers["x-turnout-provider"] == "gpu-box"
    assert raw.headers["x-turnout-model"] == "llama-8b-base"
    assert raw.headers["x-turnout-fallbacks"] == "0"
    expected_out = count_words(gpu.behaviour.reply)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        1,
        expected_out,
    )
    row = wait_for(lambda: _usage_row(system, raw.headers["x-request-id"]))
    assert row["purpose"] == "completion"
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (
        1,
        expected_out,
        False,
    )
    # 1 x 0.0005 + 9 x 0.002 = 0.0185 USD per 1M -> 18.5 nano-USD -> 19 (half-up)
    cost = _cost(1, expected_out, BASE_IN, BASE_OUT)
    assert cost == Decimal("0.000000019")
    assert Decimal(str(row["cost_usd"])) == cost
    # a chat-only model does not serve /v1/completions: a clear 400, never a silent reroute
    with pytest.raises(BadRequestError, match="does not serve completion"):
        client.completions.create(model="gpt-4o-mini", prompt="Once")


def test_rerank_over_plain_http(
    system: Any, configured: dict[str, Any], upstreams: dict[str, Any]
) -> None:
    cohere: FakeCohere = upstreams["cohere"][0]
    query = "turnout gateway"
    documents = ["the turnout gateway routes", "bananas are yellow", "a gateway for LLMs"]
    r = httpx.post(
        system.url("router") + "/v1/rerank",
        headers={"Authorization": f"Bearer {configured['key']['key']}"},
        json={"model": "rerank-fast", "query": query, "documents": documents, "top_n": 2},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "rerank-fast"
    assert [(x["index"], x["relevance_score"]) for x in body["results"]] == [(0, 1.0), (2, 0.5)]
    assert r.headers["x-turnout-provider"] == "cohere"
    assert r.headers["x-turnout-model"] == "rerank-fast"
    assert r.headers["x-turnout-fallbacks"] == "0"
    # translated to Cohere's v2 rerank with the provider's key and the upstream model id
    sent = cohere.requests[-1]
    assert sent["path"] == "/v2/rerank"
    assert sent["headers"]["Authorization"] == "Bearer co-test-key-9876"
    assert sent["body"] == {
        "model": "rerank-fake",
        "query": query,
        "documents": documents,
        "top_n": 2,
    }
    # the fake reports meta.tokens.input_tokens = query words x documents + document words
    expected_in = count_words(query) * len(documents) + sum(count_words(d) for d in documents)
    assert body["usage"]["total_tokens"] == expected_in
    row = wait_for(lambda: _usage_row(system, r.headers["x-request-id"]))
    assert row["purpose"] == "reranking"
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (
        expected_in,
        0,
        False,
    )
    assert row["provider"] == "cohere"
    assert Decimal(str(row["cost_usd"])) == _cost(expected_in, 0, RERANK_IN, Decimal(0))


def test_response_headers_on_errors(system: Any, configured: dict[str, Any]) -> None:
    key = configured["key"]["key"]
    url = system.url("router") + "/v1/chat/completions"
    r = httpx.post(
        url,
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "model_not_found"
    assert r.headers["x-request-id"].startswith("req_")
    assert "x-turnout-provider" not in r.headers
    r = httpx.post(url, headers={"Authorization": "Bearer tk-wrong"}, json={}, timeout=10)
    assert r.status_code == 401
    assert r.headers["x-request-id"].startswith("req_")


def test_credits_decrease_by_each_request_cost(system: Any, configured: dict[str, Any]) -> None:
    client: OpenAI = configured["client"]
    before = wait_for(lambda: _settled_credits(system))
    previous = before
    for content in ("first request", "the second request, a little longer"):
        raw = client.chat.completions.with_raw_response.create(
            model="llama-8b", messages=[{"role": "user", "content": content}]
        )
        request_id = raw.headers["x-request-id"]
        row = wait_for(lambda rid=request_id: _usage_row(system, rid))
        assert Decimal(str(row["cost_usd"])) > 0

        def includes(rid: str = request_id) -> Any:
            settled = _settled_credits(system)
            return settled if settled and rid in settled["costs"] else None

        now = wait_for(includes)
        new_rows = now["costs"].keys() - previous["costs"].keys()
        added = sum((now["costs"][r] for r in new_rows), Decimal(0))
        assert request_id in new_rows
        assert now["spent"] - previous["spent"] == added
        assert now["remaining"] == previous["remaining"] - added
        assert now["remaining"] < previous["remaining"]
        previous = now
    assert previous["remaining"] < before["remaining"]


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
    system = configured["system"]
    # a model declared unable to call tools is skipped for such requests: its fallback
    # (which declares nothing, so tools pass through to it) serves
    model_url = f"{system.url('config')}/api/v1/models/{configured['llama_id']}"
    r = httpx.patch(model_url, headers=system.admin, json={"capabilities": {"tools": False}})
    assert r.status_code == 200, r.text
    assert r.json()["capabilities"]["tools"] is False

    def served_by_fallback() -> bool:
        raw = client.chat.completions.with_raw_response.create(
            model="llama-8b", messages=messages, tools=tools
        )
        return raw.headers["x-turnout-model"] == "gpt-4o-mini"

    wait_for(served_by_fallback, timeout=5)
    r = httpx.patch(
        f"{system.url('config')}/api/v1/models/{configured['llama_id']}",
        headers=system.admin,
        json={"capabilities": {"streaming": True, "tools": True}},
    )
    assert r.status_code == 200, r.text
    upstreams["gpu"][0].behaviour.tool_call = True

    def call() -> Any:  # until llama-8b itself (whose upstream calls tools) serves again
        out = client.chat.completions.create(model="llama-8b", messages=messages, tools=tools)
        return out if out.choices[0].message.tool_calls else None

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
    # read once every request so far is accounted (no ingest in flight: metering reads the
    # balance and the ledger in separate statements, so mid-ingest they can disagree)
    credits = wait_for(lambda: _settled_credits(system))["raw"]
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


def _cost(inp: int, out: int, in_price: Decimal, out_price: Decimal) -> Decimal:
    """docs/CONTRACTS.md: (input x price + output x price) / 1e6, half-up to 1e-9 USD."""
    cost = (Decimal(inp) * in_price + Decimal(out) * out_price) / Decimal(1_000_000)
    return cost.quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)


def _settled_credits(system: Any) -> dict[str, Any] | None:
    """alice's credits once they account for exactly the usage rows metering lists."""
    url = system.url("metering") + "/api/v1/credits/alice"
    first = _get(url, system.admin)
    data = _get(system.url("metering") + "/api/v1/usage?user_id=alice&limit=1000", system.admin)
    again = _get(url, system.admin)
    if not first or not data or first != again:
        return None
    costs = {row["request_id"]: Decimal(str(row["cost_usd"])) for row in data["data"]}
    spent = Decimal(str(first["spent_usd"]))
    if spent != sum(costs.values(), Decimal(0)):
        return None
    return {
        "spent": spent,
        "remaining": Decimal(str(first["remaining_usd"])),
        "costs": costs,
        "raw": first,
    }


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
