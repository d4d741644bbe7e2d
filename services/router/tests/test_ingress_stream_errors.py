"""An upstream that dies mid-stream: each door tells its client in its own API's error event
(Anthropic ``event: error``; Responses ``event: error``), and the client's stream then ends
(it used to stay open until a garbage collection: the upstream connection's error held the
streaming frame through its traceback)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import web

from turnout_common.testing.servers import LocalServer

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
ASK = [{"role": "user", "content": "say hello to the test please"}]


def dies_mid_stream() -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = b'{"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
        await resp.write(
            b"data: " + chunk + b'"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        )
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()  # the upstream dies after the first words
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture(scope="module")
async def dying(router: Any, world: Any) -> Any:
    with LocalServer(dies_mid_stream) as srv:
        await world.put("provider", "p-dies", world.provider("p-dies", srv.url + "/v1"))
        await world.put("model", "m-dies", world.model("m-dies", "dies-mid-stream", "p-dies"))
        deadline = time.monotonic() + 5
        while "dies-mid-stream" not in router.app.state.index.known_names:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        yield srv


async def test_messages_stream_error_event(router: Any, dying: Any, usage_log: Any) -> None:
    c = anthropic.AsyncAnthropic(base_url=router.url, api_key=ALICE_KEY, max_retries=0)
    texts: list[str] = []
    ids: list[str] = []

    async def consume() -> None:
        async with c.messages.stream(model="dies-mid-stream", max_tokens=20, messages=ASK) as s:
            ids.append(s.response.headers["x-request-id"])
            async for ev in s:
                if ev.type == "text":
                    texts.append(ev.text)

    with pytest.raises(anthropic.APIStatusError) as info:
        await consume()
    assert texts == ["Hi"]
    rid = ids[0]
    assert "the upstream stream broke" in info.value.message
    rec = await usage_log.wait(rid)
    assert (rec["api"], rec["outcome"], rec["error_code"]) == (
        "messages",
        "upstream_error",
        "stream_interrupted",
    )


async def test_responses_stream_error_event(router: Any, dying: Any, usage_log: Any) -> None:
    c = openai.AsyncOpenAI(base_url=router.url + "/v1", api_key=ALICE_KEY, max_retries=0)
    raw = await c.responses.with_raw_response.create(
        model="dies-mid-stream", input="say hello", stream=True
    )
    events = [ev async for ev in raw.parse()]  # type: ignore[union-attr]
    kinds = [ev.type for ev in events]
    assert "response.output_text.delta" in kinds and "response.completed" not in kinds
    last = events[-1]
    assert last.type == "error" and "the upstream stream broke" in last.message
    assert last.code == "stream_interrupted"
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert (rec["api"], rec["outcome"], rec["error_code"]) == (
        "responses",
        "upstream_error",
        "stream_interrupted",
    )


async def test_chat_stream_ends_after_the_error(router: Any, dying: Any) -> None:
    """Read to the end of the body (a client that does not stop at the error event)."""
    body = {"model": "dies-mid-stream", "messages": ASK, "stream": True}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            router.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {ALICE_KEY}"},
        ) as r,
    ):
        text = await r.read()
    assert text.rstrip().endswith(b'"code":"stream_interrupted"}}')
