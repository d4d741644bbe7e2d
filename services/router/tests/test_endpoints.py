"""Each endpoint through the real (embedded) Granian server, with exact usage on Kafka."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest

from turnout_common.events import UsageEvent

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
MSG = [{"role": "user", "content": "say hello to the test please"}]  # 6 words + 3 = 9 tokens


def client(router: Any, key: str = ALICE_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=router.url + "/v1", api_key=key, max_retries=0)


async def test_chat_non_stream_exact_usage(router: Any, usage_log: Any, fakes: Any) -> None:
    raw = await client(router).chat.completions.with_raw_response.create(
        model="primary", messages=MSG
    )
    resp = raw.parse()
    assert resp.choices[0].message.content == "Hello from the fake upstream, how can I help"
    assert resp.model == "primary"
    assert raw.headers["x-turnout-provider"] == "p1"
    assert raw.headers["x-turnout-model"] == "primary"
    assert raw.headers["x-turnout-route"] == "model"  # served as requested
    assert raw.headers["x-turnout-fallbacks"] == "0"
    rid = raw.headers["x-request-id"]
    fake = fakes["one"][0]
    sent = fake.requests[-1]
    assert sent["body"]["model"] == "up-primary"
    assert sent["headers"]["Authorization"] == "Bearer sk-upstream-one-1234567890"
    rec = UsageEvent.model_validate(await usage_log.wait(rid))
    assert (rec.input_tokens, rec.output_tokens, rec.estimated) == (9, 9, False)
    assert rec.user_id == "alice" and rec.key_id == "k-alice"
    assert rec.outcome == "success" and rec.status == 200 and rec.source == "api"
    assert str(rec.cost_usd) == "0.000002700"  # (9*0.10 + 9*0.20) / 1e6
    assert [a.provider for a in rec.attempts] == ["p1"]


async def test_chat_stream_with_and_without_usage_chunk(router: Any, usage_log: Any) -> None:
    c = client(router)
    stream = await c.chat.completions.create(
        model="primary", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "Hello from the fake upstream, how can I help"
    assert usage is not None and usage.prompt_tokens == 9 and usage.completion_tokens == 9

    raw = await c.chat.completions.with_raw_response.create(
        model="primary", messages=MSG, stream=True, extra_headers={"x-turnout-source": "lab"}
    )
    chunks = [ch async for ch in raw.parse()]
    assert all(ch.usage is None for ch in chunks)
    assert all(ch.model == "primary" for ch in chunks)
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert (rec["input_tokens"], rec["output_tokens"], rec["estimated"]) == (9, 9, False)
    assert rec["stream"] is True and rec["source"] == "lab" and rec["ttft_ms"] is not None


async def test_stream_asks_upstream_for_usage(router: Any, fakes: Any) -> None:
    stream = await client(router).chat.completions.create(
        model="primary", messages=MSG, stream=True
    )
    async for _ in stream:
        pass
    body = fakes["one"][0].requests[-1]["body"]
    assert body["stream_options"] == {"include_usage": True}


async def test_tools(router: Any, fakes: Any) -> None:
    fakes["one"][0].behaviour.tool_call = True
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    resp = await client(router).chat.completions.create(model="primary", messages=MSG, tools=tools)
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "weather" and call.function.arguments == '{"city": "Paris"}'
    assert fakes["one"][0].requests[-1]["body"]["tools"] == tools


async def test_completions(router: Any, usage_log: Any) -> None:
    raw = await client(router).completions.with_raw_response.create(
        model="primary", prompt="one two three"
    )
    assert raw.parse().choices[0].text.startswith("Hello")
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert (rec["purpose"], rec["input_tokens"], rec["output_tokens"]) == ("completion", 3, 9)


async def test_embeddings(router: Any, usage_log: Any) -> None:
    raw = await client(router).embeddings.with_raw_response.create(
        model="emb", input=["alpha beta", "gamma"]
    )
    resp = raw.parse()
    assert len(resp.data) == 2 and len(resp.data[0].embedding) == 8
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert (rec["purpose"], rec["input_tokens"], rec["output_tokens"]) == ("embeddings", 3, 0)


async def test_rerank(router: Any, usage_log: Any) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            router.url + "/v1/rerank",
            json={"model": "rr", "query": "q", "documents": ["a", "b", "c"], "top_n": 2},
            headers={"Authorization": f"Bearer {ALICE_KEY}"},
        ) as r:
            assert r.status == 200
            body = await r.json()
            rid = r.headers["x-request-id"]
    assert [x["index"] for x in body["results"]] == [0, 1, 2]
    assert body["model"] == "rr"
    rec = await usage_log.wait(rid)
    assert (rec["purpose"], rec["input_tokens"]) == ("reranking", 21)


async def test_models_lists_what_the_key_may_use(router: Any) -> None:
    models = await client(router).models.list()
    ids = {m.id for m in models.data}
    assert {"primary", "backup", "emb", "rr"} <= ids


async def test_models_retrieve_one(router: Any) -> None:
    sdk = client(router)
    model = await sdk.models.retrieve("primary")
    assert (model.id, model.object) == ("primary", "model")
    with pytest.raises(openai.NotFoundError) as info:
        await sdk.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_ops(router: Any, path: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(router.url + path) as r:
        assert r.status == 200
        text = await r.text()
    if path == "/metrics":
        assert "turnout_http_requests_total" in text
