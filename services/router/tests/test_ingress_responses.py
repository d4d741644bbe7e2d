"""``POST /v1/responses`` with the official ``openai`` SDK against the real router and real
local upstreams of each wire kind."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from turnout_common.devinfra import free_port
from turnout_common.testing.fake_providers import FakeAnthropic, FakeCohere, FakeGemini, start_fake
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import start_fake_openai

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
REPLY = "Hello from the fake upstream, how can I help"
VISION = {"streaming": True, "tools": True, "vision": True, "json_mode": True}
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()
KINDS = ("openai", "anthropic", "google", "cohere")
NATIVE = "openai-native"
"""A provider of kind ``openai``: it speaks the Responses API, so the door passes through."""
ASK = "What is the weather in Paris?"


def client(router: Any, key: str = ALICE_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=router.url + "/v1", api_key=key, max_retries=0)


async def visible(router: Any, name: str) -> None:
    deadline = time.monotonic() + 5
    while name not in router.app.state.index.known_names:
        assert time.monotonic() < deadline, f"{name} never reached the router"
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
async def ups(router: Any, world: Any, fakes: Any) -> AsyncIterator[dict[str, Any]]:
    """kind → its fake upstream; model ``resp-<kind>`` is served by it."""
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
    native, srv = start_fake_openai("native")
    servers.append(srv)
    kinds[NATIVE], urls[NATIVE] = native, srv.url + "/v1"
    for kind in (*KINDS, NATIVE):
        pid = f"p-resp-{kind}"
        prov_kind = {"openai": "openai_compatible", NATIVE: "openai"}.get(kind, kind)
        await world.put("provider", pid, world.provider(pid, urls[kind], kind=prov_kind))
        m = world.model(f"m-resp-{kind}", f"resp-{kind}", pid, capabilities=VISION)
        await world.put("model", f"m-resp-{kind}", m)
    for kind in (*KINDS, NATIVE):
        await visible(router, f"resp-{kind}")
    yield kinds
    for srv in servers:
        srv.stop()


@pytest.fixture(autouse=True)
def _reset(ups: dict[str, Any]) -> None:
    for fake in ups.values():
        fake.behaviour.tool_call = False


def last(ups: dict[str, Any], kind: str) -> dict[str, Any]:
    body: dict[str, Any] = ups[kind].requests[-1]["body"]
    return body


@pytest.mark.parametrize("kind", [*KINDS, NATIVE])
async def test_create(router: Any, ups: dict[str, Any], usage_log: Any, kind: str) -> None:
    raw = await client(router).responses.with_raw_response.create(
        model=f"resp-{kind}", instructions="Be brief.", input=ASK, max_output_tokens=50
    )
    resp = raw.parse()
    assert resp.object == "response" and resp.status == "completed"
    assert resp.model == f"resp-{kind}" and resp.store is False
    assert resp.output_text == REPLY
    assert resp.usage is not None and resp.usage.output_tokens == 9
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert rec["api"] == "responses" and rec["outcome"] == "success" and not rec["estimated"]
    assert (rec["input_tokens"], rec["output_tokens"]) == (
        resp.usage.input_tokens,
        resp.usage.output_tokens,
    )
    assert rec["cost_usd"] == raw.headers["x-turnout-cost-usd"]
    if kind == "openai":
        up = last(ups, "openai")
        assert up["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": ASK},
        ]
        assert up["max_tokens"] == 50


@pytest.mark.parametrize("kind", [*KINDS, NATIVE])
async def test_stream(router: Any, ups: dict[str, Any], usage_log: Any, kind: str) -> None:
    raw = await client(router).responses.with_raw_response.create(
        model=f"resp-{kind}", input=ASK, stream=True
    )
    events = [ev async for ev in raw.parse()]  # type: ignore[union-attr]
    kinds = [ev.type for ev in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and "response.output_item.done" in kinds
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    final = events[-1].response
    assert final.output_text == REPLY and final.status == "completed"
    assert final.usage is not None
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert rec["api"] == "responses" and rec["stream"] and not rec["estimated"]
    assert (rec["input_tokens"], rec["output_tokens"]) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_stream_helper(router: Any, ups: dict[str, Any], kind: str) -> None:
    """The SDK's own accumulator (``responses.stream``) rebuilds the same response."""
    async with client(router).responses.stream(model=f"resp-{kind}", input=ASK) as s:
        deltas = [ev.delta async for ev in s if ev.type == "response.output_text.delta"]
        final = await s.get_final_response()
    assert "".join(deltas) == REPLY == final.output_text


@pytest.mark.parametrize("kind", KINDS)
async def test_tools_round_trip(router: Any, ups: dict[str, Any], kind: str) -> None:
    ups[kind].behaviour.tool_call = True
    c = client(router)
    first = await c.responses.create(model=f"resp-{kind}", input=ASK, tools=[WEATHER])
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "get_weather" and '"Paris"' in call.arguments
    ups[kind].behaviour.tool_call = False
    second = await c.responses.create(
        model=f"resp-{kind}",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": ASK},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert second.output_text == REPLY
    if kind == "openai":
        up = last(ups, "openai")
        assert up["messages"][1]["tool_calls"][0]["id"] == call.call_id
        assert up["messages"][2] == {
            "role": "tool",
            "tool_call_id": call.call_id,
            "content": "sunny",
        }


async def test_function_call_streamed(router: Any, ups: dict[str, Any]) -> None:
    ups["anthropic"].behaviour.tool_call = True
    async with client(router).responses.stream(
        model="resp-anthropic", input=ASK, tools=[WEATHER]
    ) as s:
        kinds = [ev.type async for ev in s]
        final = await s.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    call = final.output[0]
    assert call.type == "function_call" and call.arguments == '{"city": "Paris"}'


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_image(router: Any, ups: dict[str, Any], kind: str) -> None:
    resp = await client(router).responses.create(
        model=f"resp-{kind}",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this picture?"},
                    {
                        "type": "input_image",
                        "image_url": f"data:image/png;base64,{PNG}",
                        "detail": "auto",
                    },
                ],
            }
        ],
    )
    assert resp.output_text == REPLY
    parts = last(ups, kind)["messages"][0]["content"]
    if kind == "openai":
        assert parts[1] == {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        }
    else:
        assert parts[1]["source"]["data"] == PNG


async def test_stored_responses_are_refused(router: Any, ups: dict[str, Any]) -> None:
    c = client(router)
    for kw in ({"store": True}, {"previous_response_id": "resp_123"}):
        with pytest.raises(openai.BadRequestError) as info:
            await c.responses.create(model="resp-openai", input=ASK, **kw)  # type: ignore[arg-type]
        assert "does not store responses" in info.value.message
    resp = await c.responses.create(model="resp-openai", input=ASK, store=False)
    assert resp.store is False


async def test_errors(router: Any, world: Any, ups: dict[str, Any], unique: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        await client(router, key="tk-nope").responses.create(model="resp-openai", input=ASK)
    with pytest.raises(openai.NotFoundError):
        await client(router).responses.create(model="no-such-model", input=ASK)
    with pytest.raises(openai.BadRequestError) as bad:
        await client(router).responses.create(
            model="resp-openai",
            input=ASK,
            tools=[{"type": "web_search"}],  # type: ignore[list-item]
        )
    assert "hosted tools ('web_search') have no chat-completions form" in bad.value.message
    assert "only openai providers take it" in bad.value.message
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
    with pytest.raises(openai.RateLimitError) as info:
        await client(router, key=secret).responses.create(model="resp-openai", input=ASK)
    assert info.value.code == "insufficient_quota"


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_down_falls_back(
    router: Any, world: Any, ups: dict[str, Any], unique: str, usage_log: Any, stream: bool
) -> None:
    pid = f"p-{unique}"
    url = f"http://127.0.0.1:{free_port()}/v1"
    await world.put("provider", pid, world.provider(pid, url))
    model = world.model(f"m-{unique}", unique, pid, fallbacks=["backup"])
    await world.put("model", f"m-{unique}", model)
    await visible(router, unique)
    c = client(router)
    raw = await c.responses.with_raw_response.create(model=unique, input=ASK, stream=stream)
    assert raw.headers["x-turnout-model"] == "backup"
    assert raw.headers["x-turnout-fallbacks"] == "1"
    if stream:
        events = [ev async for ev in raw.parse()]  # type: ignore[union-attr]
        done = events[-1]
        assert done.type == "response.completed"
        text, usage = done.response.output_text, done.response.usage
    else:
        resp = raw.parse()
        text, usage = resp.output_text, resp.usage  # type: ignore[union-attr]
    assert text == REPLY
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert rec["fallbacks"] == 1 and rec["api"] == "responses"
    assert rec["output_tokens"] == usage.output_tokens


@pytest.mark.parametrize("stream", [False, True])
async def test_native_passthrough(router: Any, ups: dict[str, Any], stream: bool) -> None:
    """To an ``openai`` provider the client's body goes as it came (fields chat cannot say,
    like ``reasoning``, included), with ``store`` false; the answer is the upstream's own."""
    raw = await client(router).responses.with_raw_response.create(
        model=f"resp-{NATIVE}",
        input=ASK,
        reasoning={"effort": "low"},
        stream=stream,
    )
    if stream:
        events = [ev async for ev in raw.parse()]  # type: ignore[union-attr]
        resp = events[-1].response
    else:
        resp = raw.parse()  # type: ignore[assignment]
    assert resp.id.startswith("resp_fake") and resp.model == f"resp-{NATIVE}"
    up = ups[NATIVE].requests[-1]
    assert up["path"] == "/v1/responses"
    assert up["body"]["reasoning"] == {"effort": "low"} and up["body"]["store"] is False
    assert up["body"]["model"] == f"up-resp-{NATIVE}" and up["body"]["input"] == ASK


async def test_structured_output(router: Any, ups: dict[str, Any]) -> None:
    """``text.format`` json_schema reaches the upstream as the chat ``response_format``."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    resp = await client(router).responses.create(
        model="resp-openai",
        input=ASK,
        text={"format": {"type": "json_schema", "name": "w", "schema": schema}},
    )
    assert resp.output_text == '{"city":"Paris"}'
    fmt = last(ups, "openai")["response_format"]
    assert fmt == {"type": "json_schema", "json_schema": {"name": "w", "schema": schema}}


async def test_hosted_tools_go_only_to_native_providers(router: Any, ups: dict[str, Any]) -> None:
    """A hosted tool has no chat form: the request may still go, as it is, to an ``openai``
    provider (the door keeps the attempt chain to those)."""
    resp = await client(router).responses.create(
        model=f"resp-{NATIVE}", input=ASK, tools=[{"type": "web_search"}]
    )
    assert resp.output_text == REPLY
    assert ups[NATIVE].requests[-1]["body"]["tools"] == [{"type": "web_search"}]
