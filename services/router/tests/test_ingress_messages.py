"""``POST /v1/messages`` and ``/v1/messages/count_tokens`` with the official ``anthropic`` SDK
against the real router and real local upstreams of each wire kind."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from turnout_common.devinfra import free_port
from turnout_common.testing.fake_providers import FakeAnthropic, FakeCohere, FakeGemini, start_fake
from turnout_common.testing.servers import LocalServer

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
REPLY = "Hello from the fake upstream, how can I help"
VISION = {"streaming": True, "tools": True, "vision": True, "json_mode": True}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()
KINDS = ("openai", "anthropic", "google", "cohere")
"""Upstream wire kinds; each serves a model named ``msg-<kind>``."""


def client(router: Any, key: str = ALICE_KEY, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=router.url, api_key=key, max_retries=0, **kw)


async def visible(router: Any, name: str) -> None:
    deadline = time.monotonic() + 5
    while name not in router.app.state.index.known_names:
        assert time.monotonic() < deadline, f"{name} never reached the router"
        await asyncio.sleep(0.01)


class Upstreams:
    def __init__(self, fakes: dict[str, Any]) -> None:
        self.fakes = fakes  # kind -> fake (requests, behaviour)

    def last(self, kind: str) -> dict[str, Any]:
        req: dict[str, Any] = self.fakes[kind].requests[-1]
        return req


@pytest.fixture(scope="module")
async def ups(router: Any, world: Any, fakes: Any) -> AsyncIterator[Upstreams]:
    servers: list[LocalServer] = []
    kinds: dict[str, Any] = {"openai": fakes["one"][0]}
    urls = {"openai": fakes["one"][1].url + "/v1"}
    for kind, fake in (
        ("anthropic", FakeAnthropic(name="ant")),
        ("google", FakeGemini(name="gem")),
        ("cohere", FakeCohere(name="coh")),
    ):
        _, srv = start_fake(fake)
        servers.append(srv)
        kinds[kind], urls[kind] = fake, srv.url
    for kind in KINDS:
        pid = f"p-msg-{kind}"
        prov_kind = "openai_compatible" if kind == "openai" else kind
        await world.put("provider", pid, world.provider(pid, urls[kind], kind=prov_kind))
        m = world.model(
            f"m-msg-{kind}", f"msg-{kind}", pid, capabilities=VISION, fallbacks=["backup"]
        )
        await world.put("model", f"m-msg-{kind}", m)
    for kind in KINDS:
        await visible(router, f"msg-{kind}")
    yield Upstreams(kinds)
    for fake in kinds.values():
        fake.behaviour.tool_call = False
    for srv in servers:
        srv.stop()


@pytest.fixture(autouse=True)
def _reset(ups: Upstreams) -> None:
    for fake in ups.fakes.values():
        fake.behaviour.tool_call = False
        fake.behaviour.status = 200


ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.mark.parametrize("kind", KINDS)
async def test_create(router: Any, ups: Upstreams, usage_log: Any, kind: str) -> None:
    raw = await client(router).messages.with_raw_response.create(
        model=f"msg-{kind}",
        max_tokens=50,
        system="Be brief.",
        messages=ASK,
        extra_body={"temperature": 0.5},  # sampling knobs are not typed by this SDK version
        stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "end-user-7"},
    )
    msg = await raw.parse()
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == f"msg-{kind}"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == REPLY  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 9
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert rec["api"] == "messages" and rec["outcome"] == "success"
    assert not rec["estimated"]
    assert (rec["input_tokens"], rec["output_tokens"]) == (
        msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0),
        msg.usage.output_tokens,
    )
    assert rec["cost_usd"] == raw.headers["x-turnout-cost-usd"]
    up = ups.last(kind)["body"]
    if kind == "anthropic":  # native: the client's body as it came, model resolved
        assert up["system"] == "Be brief." and up["stop_sequences"] == ["\n\nHuman:"]
        assert up["metadata"] == {"user_id": "end-user-7"} and up["model"] == "up-msg-anthropic"
    elif kind == "openai":
        assert up["messages"][0] == {"role": "system", "content": "Be brief."}
        assert up["stop"] == ["\n\nHuman:"] and up["user"] == "end-user-7"
        assert up["max_tokens"] == 50 and up["temperature"] == 0.5


async def test_native_passthrough_keeps_what_chat_cannot_say(router: Any, ups: Upstreams) -> None:
    """``top_k`` has no chat-completions field: only a native upstream receives it; the
    client's ``anthropic-version`` is forwarded."""
    await client(router).messages.create(
        model="msg-anthropic",
        max_tokens=20,
        messages=ASK,
        extra_body={"top_k": 5},
        extra_headers={"anthropic-version": "2023-06-01"},
    )
    assert ups.last("anthropic")["body"]["top_k"] == 5
    assert ups.last("anthropic")["headers"]["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize("kind", KINDS)
async def test_stream(router: Any, ups: Upstreams, usage_log: Any, kind: str) -> None:
    c = client(router)
    kinds: list[str] = []
    async with c.messages.stream(model=f"msg-{kind}", max_tokens=50, messages=ASK) as s:
        async for ev in s:
            kinds.append(ev.type)
        final = await s.get_final_message()
        rid = s.response.headers["x-request-id"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "message_delta" in kinds
    assert final.content[0].text == REPLY  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.model == f"msg-{kind}"
    rec = await usage_log.wait(rid)
    assert rec["api"] == "messages" and rec["stream"] and not rec["estimated"]
    assert (rec["input_tokens"], rec["output_tokens"]) == (
        final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0),
        final.usage.output_tokens,
    )
    assert rec["input_tokens"] > 0


@pytest.mark.parametrize("kind", KINDS)
async def test_tools_round_trip(router: Any, ups: Upstreams, kind: str) -> None:
    ups.fakes[kind].behaviour.tool_call = True
    c = client(router)
    first = await c.messages.create(
        model=f"msg-{kind}",
        max_tokens=50,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "auto"},
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    ups.fakes[kind].behaviour.tool_call = False
    second = await c.messages.create(
        model=f"msg-{kind}",
        max_tokens=50,
        tools=[WEATHER],
        messages=[
            *ASK,
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
            },
        ],
    )
    assert second.content[0].text == REPLY  # type: ignore[union-attr]
    up = ups.last(kind)["body"]
    if kind == "openai":
        assert up["tools"][0]["function"]["name"] == "get_weather"
        assert up["messages"][1]["tool_calls"][0]["id"] == use.id
        assert up["messages"][2] == {"role": "tool", "tool_call_id": use.id, "content": "sunny"}
    elif kind == "anthropic":
        assert up["messages"][2]["content"][0]["tool_use_id"] == use.id


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_tool_use_streamed(router: Any, ups: Upstreams, kind: str) -> None:
    ups.fakes[kind].behaviour.tool_call = True
    async with client(router).messages.stream(
        model=f"msg-{kind}", max_tokens=50, messages=ASK, tools=[WEATHER]
    ) as s:
        final = await s.get_final_message()
    if kind == "openai":  # the fake OpenAI upstream streams text only
        assert final.content[0].type == "text"
        return
    use = final.content[0]
    assert use.type == "tool_use" and use.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_image(router: Any, ups: Upstreams, kind: str) -> None:
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is in this picture?"},
    ]
    msg = await client(router).messages.create(
        model=f"msg-{kind}", max_tokens=20, messages=[{"role": "user", "content": content}]
    )
    assert msg.content[0].text == REPLY  # type: ignore[union-attr]
    parts = ups.last(kind)["body"]["messages"][0]["content"]
    if kind == "openai":
        assert parts[0] == {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PNG}"},
        }
    else:
        assert parts[0]["source"]["data"] == PNG


async def test_count_tokens(router: Any, ups: Upstreams) -> None:
    c = client(router)
    raw = await c.messages.with_raw_response.count_tokens(
        model="msg-openai", system="Be brief.", messages=ASK
    )
    # no upstream count for this kind: the router's estimate, characters / 4 + 1
    assert raw.headers["x-turnout-token-count"] == "estimate"
    n = await raw.parse()
    assert n.input_tokens == (len("Be brief.") + len(ASK[0]["content"])) // 4 + 1
    # an Anthropic provider counts itself: the same figure its answer would report
    n = await c.messages.count_tokens(
        model="msg-anthropic", system="Be brief.", messages=ASK, tools=[WEATHER]
    )
    msg = await c.messages.create(
        model="msg-anthropic", system="Be brief.", messages=ASK, max_tokens=20
    )
    assert n.input_tokens == msg.usage.input_tokens == 2 + 3 + 6 + 3
    sent = ups.fakes["anthropic"].requests[-2]
    assert sent["path"] == "/v1/messages/count_tokens" and sent["body"]["tools"] == [WEATHER]
    assert "max_tokens" not in sent["body"]
    with pytest.raises(anthropic.NotFoundError) as nf:
        await c.messages.count_tokens(model="no-such-model", messages=ASK)
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


async def test_auth_by_bearer_and_bad_key(router: Any, ups: Upstreams, usage_log: Any) -> None:
    bearer = anthropic.AsyncAnthropic(
        base_url=router.url, auth_token=ALICE_KEY, max_retries=0
    )  # Authorization: Bearer, no x-api-key
    msg = await bearer.messages.create(model="msg-openai", max_tokens=20, messages=ASK)
    assert msg.usage.output_tokens == 9
    with pytest.raises(anthropic.AuthenticationError) as info:
        await client(router, key="tk-nope").messages.create(
            model="msg-openai", max_tokens=20, messages=ASK
        )
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    rec = await usage_log.wait(info.value.response.headers["x-request-id"])
    assert (rec["api"], rec["status"], rec["outcome"]) == ("messages", 401, "rejected")


async def test_unknown_model_and_bad_request(router: Any, ups: Upstreams) -> None:
    c = client(router)
    with pytest.raises(anthropic.NotFoundError) as nf:
        await c.messages.create(model="no-such-model", max_tokens=20, messages=ASK)
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.UnprocessableEntityError) as bad:
        await c.messages.create(model="msg-openai", max_tokens=0, messages=ASK)
    assert "max_tokens" in bad.value.message
    with pytest.raises(anthropic.BadRequestError):
        await c.messages.create(
            model="msg-openai",
            max_tokens=20,
            messages=[{"role": "user", "content": [{"type": "nope"}]}],  # type: ignore[list-item]
        )


async def test_budget_exhausted(router: Any, world: Any, ups: Upstreams, unique: str) -> None:
    user, secret = f"u-{unique}", f"tk-{unique}-secret-000000000000000000000"
    await world.put(
        "user", user, {"id": user, "tier": "starter", "monthly_budget_usd": "0", "enabled": True}
    )
    data = world.key(f"k-{unique}", user, secret)
    await world.put("virtual_key", f"k-{unique}", data)
    deadline = time.monotonic() + 5
    while data["key_hash"] not in router.app.state.index.keys_by_hash:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    with pytest.raises(anthropic.RateLimitError) as info:
        await client(router, key=secret).messages.create(
            model="msg-openai", max_tokens=20, messages=ASK
        )
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "budget" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_down_falls_back(
    router: Any, world: Any, ups: Upstreams, unique: str, usage_log: Any, stream: bool
) -> None:
    """An Anthropic provider that refuses connections: the chat fallback (``backup`` on an
    OpenAI-compatible upstream) answers, in Anthropic's shape."""
    pid = f"p-{unique}"
    url = f"http://127.0.0.1:{free_port()}"
    await world.put("provider", pid, world.provider(pid, url, kind="anthropic"))
    await world.put(
        "model", f"m-{unique}", world.model(f"m-{unique}", unique, pid, fallbacks=["backup"])
    )
    await visible(router, unique)
    c = client(router)
    if stream:
        async with c.messages.stream(model=unique, max_tokens=20, messages=ASK) as s:
            final = await s.get_final_message()
            headers = s.response.headers
    else:
        raw = await c.messages.with_raw_response.create(model=unique, max_tokens=20, messages=ASK)
        final, headers = await raw.parse(), raw.headers
    assert final.content[0].text == REPLY  # type: ignore[union-attr]
    assert headers["x-turnout-model"] == "backup" and headers["x-turnout-fallbacks"] == "1"
    rec = await usage_log.wait(headers["x-request-id"])
    assert rec["fallbacks"] == 1 and rec["api"] == "messages"
    assert rec["output_tokens"] == final.usage.output_tokens


async def test_client_abort_mid_stream(router: Any, ups: Upstreams, usage_log: Any) -> None:
    """A client that leaves mid-stream still gets a usage record (outcome client_abort)."""
    ups.fakes["openai"].behaviour.chunk_delay_s = 0.05
    try:
        async with client(router).messages.stream(
            model="msg-openai", max_tokens=50, messages=ASK
        ) as s:
            rid = s.response.headers["x-request-id"]
            async for ev in s:
                if ev.type == "content_block_delta":
                    break  # leave after the first words
        rec = await usage_log.wait(rid)
    finally:
        ups.fakes["openai"].behaviour.chunk_delay_s = 0.0
    assert (rec["api"], rec["outcome"], rec["status"]) == ("messages", "client_abort", 499)
    assert rec["input_tokens"] > 0


async def test_untranslatable_blocks_go_only_to_native_providers(
    router: Any, ups: Upstreams
) -> None:
    """A ``document`` block has no chat form: it goes as it is to an Anthropic provider, and
    is refused (400 naming it) for a model with none."""
    doc: Any = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "Paris is sunny."},
    }
    content = [doc, {"type": "text", "text": "What does it say?"}]
    c = client(router)
    msg = await c.messages.create(
        model="msg-anthropic", max_tokens=20, messages=[{"role": "user", "content": content}]
    )
    assert msg.content[0].text == REPLY  # type: ignore[union-attr]
    assert ups.last("anthropic")["body"]["messages"][0]["content"][0] == doc
    with pytest.raises(anthropic.BadRequestError) as info:
        await c.messages.create(
            model="msg-openai", max_tokens=20, messages=[{"role": "user", "content": content}]
        )
    assert "'document' has no chat-completions form" in info.value.message
    assert "only anthropic providers take it" in info.value.message


async def test_beta_messages_as_claude_code_calls_them(router: Any, ups: Upstreams) -> None:
    """``client.beta.messages`` posts to ``/v1/messages?beta=true`` with ``anthropic-beta``:
    served the same, the beta flags forwarded to a native upstream."""
    c = client(router)
    for kind in ("anthropic", "openai"):
        msg = await c.beta.messages.create(
            model=f"msg-{kind}", max_tokens=20, messages=ASK, betas=["context-1m-2025-08-07"]
        )
        assert msg.content[0].text == REPLY  # type: ignore[union-attr]
    sent = ups.fakes["anthropic"].requests[-1]
    assert sent["path"] == "/v1/messages"  # the query string stays with the router
    assert sent["headers"]["anthropic-beta"] == "context-1m-2025-08-07"
