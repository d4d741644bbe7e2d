"""Each adapter against its fake provider over real HTTP: prepare → send → parse / stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from turnout_common.errors import BadRequest, RateLimited, TurnoutError, UpstreamAuthFailed
from turnout_common.testing.fake_providers import (
    FakeAnthropic,
    FakeCohere,
    FakeGemini,
    start_fake,
)
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import UpstreamBehaviour
from turnout_router.adapters import anthropic, cohere, gemini
from turnout_router.adapters.base import Adapter, Purpose, UpstreamTarget, UsageCounts

from .conftest import Golden

KEY = "test-provider-key-0123456789"
REPLY = "Hello from the fake upstream, how can I help"  # 9 words
MESSAGES = [
    {"role": "system", "content": "Be brief."},  # 2 words + 3
    {"role": "user", "content": "What is the weather in Paris?"},  # 6 words + 3
]
PROMPT_TOKENS = 14
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]

CASES = {
    "anthropic": (FakeAnthropic, anthropic.ADAPTER, "anthropic", "claude-fake", "/v1/models"),
    "gemini": (FakeGemini, gemini.ADAPTER, "google", "gemini-fake", "/v1beta/models"),
    "cohere": (FakeCohere, cohere.ADAPTER, "cohere", "command-fake", "/v1/models"),
}


class Upstream:
    def __init__(
        self,
        fake: Any,
        server: LocalServer,
        adapter: Adapter,
        kind: str,
        model: str,
        models_path: str,
    ) -> None:
        self.fake, self.server, self.adapter = fake, server, adapter
        self.target = UpstreamTarget(kind, server.url, model, api_key=KEY)
        self.models_path = models_path

    async def send(
        self, purpose: Purpose, body: dict[str, Any], *, stream: bool = False, key: str | None = KEY
    ) -> tuple[int, dict[str, str], list[bytes]]:
        target = UpstreamTarget(
            self.target.kind, self.target.base_url, self.target.upstream_model, api_key=key
        )
        req = self.adapter.prepare(purpose, body, target, stream=stream)
        async with (
            aiohttp.ClientSession() as session,
            session.request(req.method, req.url, headers=req.headers, data=req.body) as resp,
        ):
            chunks = [c async for c in resp.content.iter_chunked(7)]
            return resp.status, dict(resp.headers), chunks

    async def chat(self, body: dict[str, Any]) -> tuple[dict[str, Any], UsageCounts]:
        status, _, chunks = await self.send("chat", body)
        assert status == 200, b"".join(chunks)
        out, usage = self.adapter.parse("chat", b"".join(chunks), "public")
        return orjson.loads(out), usage

    async def stream(self, body: dict[str, Any]) -> tuple[list[Any], UsageCounts, str | None]:
        status, _, chunks = await self.send("chat", body, stream=True)
        assert status == 200, b"".join(chunks)
        translator = self.adapter.stream("public", include_usage=True)
        events = Golden.events(Golden.run(translator, chunks))
        return events, translator.usage, translator.finish_reason

    async def error(self, purpose: Purpose, body: dict[str, Any], **kw: Any) -> TurnoutError:
        status, headers, chunks = await self.send(purpose, body, **kw)
        assert status >= 400
        return self.adapter.error(status, headers, b"".join(chunks))


@pytest.fixture(scope="module", params=list(CASES))
def upstream(request: pytest.FixtureRequest) -> Iterator[Upstream]:
    fake_cls, adapter, kind, model, models_path = CASES[request.param]
    fake, server = start_fake(fake_cls(name=request.param))
    try:
        yield Upstream(fake, server, adapter, kind, model, models_path)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def reset(upstream: Upstream) -> None:
    upstream.fake.behaviour = UpstreamBehaviour(api_key=KEY, reply=REPLY)
    upstream.fake.requests.clear()


async def test_chat_non_stream(upstream: Upstream) -> None:
    out, usage = await upstream.chat({"messages": MESSAGES, "max_tokens": 50})
    assert out["choices"][0]["message"]["content"] == REPLY
    assert out["choices"][0]["finish_reason"] == "stop"
    assert (usage.input_tokens, usage.output_tokens, usage.present) == (PROMPT_TOKENS, 9, True)
    assert out["usage"]["total_tokens"] == PROMPT_TOKENS + 9


async def test_chat_stream(upstream: Upstream) -> None:
    events, usage, finish = await upstream.stream({"messages": MESSAGES})
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"]
    )
    assert text == REPLY
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-2]["usage"] == {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": 9,
        "total_tokens": PROMPT_TOKENS + 9,
    }
    assert events[-1] == "[DONE]"
    assert finish == "stop"
    assert (usage.input_tokens, usage.output_tokens) == (PROMPT_TOKENS, 9)


async def test_tool_call_non_stream_and_stream(upstream: Upstream) -> None:
    upstream.fake.behaviour.tool_call = True
    body = {"messages": MESSAGES, "tools": TOOLS}
    out, _ = await upstream.chat(body)
    call = out["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    events, usage, finish = await upstream.stream(body)
    deltas = [
        d
        for e in events[:-1]
        if e["choices"]
        for d in e["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert deltas[0]["function"]["name"] == "get_weather"
    assert orjson.loads("".join(d["function"]["arguments"] for d in deltas)) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert usage.output_tokens == 3


async def test_wrong_key_is_an_upstream_auth_failure(upstream: Upstream) -> None:
    err = await upstream.error("chat", {"messages": MESSAGES}, key="wrong-key-000000")
    assert isinstance(err, UpstreamAuthFailed)
    assert err.status == 502
    assert KEY not in err.message


async def test_rate_limit_with_retry_after(upstream: Upstream) -> None:
    upstream.fake.behaviour.status = 429
    upstream.fake.behaviour.retry_after = "2"
    err = await upstream.error("chat", {"messages": MESSAGES})
    assert isinstance(err, RateLimited)
    assert err.retry_after == 2.0
    assert "failed with 429" in err.message


async def test_server_error_is_an_upstream_error(upstream: Upstream) -> None:
    upstream.fake.behaviour.status = 503
    err = await upstream.error("chat", {"messages": MESSAGES})
    assert err.status == 502
    assert type(err).__name__ == "UpstreamError"


async def test_model_listing_for_health_probes(upstream: Upstream) -> None:
    headers = {"x-api-key": KEY, "x-goog-api-key": KEY, "Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(upstream.server.url + upstream.models_path, headers=headers) as resp,
    ):
        assert resp.status == 200
        assert await resp.json()
    async with (
        aiohttp.ClientSession() as session,
        session.get(upstream.server.url + upstream.models_path) as resp,
    ):
        assert resp.status == 401


async def test_embeddings_where_supported(upstream: Upstream) -> None:
    if not upstream.adapter.supports("embeddings"):
        with pytest.raises(BadRequest, match="does not serve 'embeddings'"):
            await upstream.send("embeddings", {"input": "x"})
        return
    status, _, chunks = await upstream.send("embeddings", {"input": ["one two", "three"]})
    assert status == 200
    out, usage = upstream.adapter.parse("embeddings", b"".join(chunks), "emb")
    data = orjson.loads(out)
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert len(data["data"][0]["embedding"]) == 8
    assert usage.present == (upstream.target.kind == "cohere")
    if usage.present:
        assert usage.input_tokens == 3


async def test_rerank_where_supported(upstream: Upstream) -> None:
    if not upstream.adapter.supports("reranking"):
        with pytest.raises(BadRequest, match="does not serve 'reranking'"):
            await upstream.send("reranking", {"query": "q", "documents": ["d"]})
        return
    body = {
        "query": "weather paris",
        "documents": ["tokyo sushi", "paris weather today", "x"],
        "top_n": 2,
    }
    status, _, chunks = await upstream.send("reranking", body)
    assert status == 200
    out, usage = upstream.adapter.parse("reranking", b"".join(chunks), "rr")
    data = orjson.loads(out)
    assert [r["index"] for r in data["results"]] == [1, 0]
    assert data["usage"]["search_units"] == 1
    assert usage.input_tokens == 2 * 3 + 2 + 3 + 1
