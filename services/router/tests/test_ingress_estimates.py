"""An upstream that reports no token counts: the router estimates, and each door shows its
client exactly the estimate the usage record holds (marked ``estimated`` there)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp import web

from turnout_common.testing.servers import LocalServer

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
REPLY = ["Counting ", "is ", "left ", "to ", "the ", "gateway."]
ASK = "How many tokens was this?"


def no_usage() -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        base = {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"]}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(REPLY)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response({**base, "choices": [choice]})  # no "usage"
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for word in REPLY:
            chunk = {**base, "choices": [{"index": 0, "delta": {"content": word}}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + orjson.dumps(end) + b"\n\ndata: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture(scope="module")
async def silent(router: Any, world: Any) -> AsyncIterator[str]:
    with LocalServer(no_usage) as srv:
        await world.put("provider", "p-silent", world.provider("p-silent", srv.url + "/v1"))
        await world.put("model", "m-silent", world.model("m-silent", "no-usage", "p-silent"))
        deadline = time.monotonic() + 5
        while "no-usage" not in router.app.state.index.known_names:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        yield "no-usage"


def estimate() -> tuple[int, int]:
    """What the router estimates: prompt characters / 4 + 1, output (characters + 3) / 4."""
    return len(ASK) // 4 + 1, (len("".join(REPLY)) + 3) // 4


@pytest.mark.parametrize("stream", [False, True])
async def test_messages_show_the_estimate(
    router: Any, silent: str, usage_log: Any, stream: bool
) -> None:
    c = anthropic.AsyncAnthropic(base_url=router.url, api_key=ALICE_KEY, max_retries=0)
    ask = [{"role": "user", "content": ASK}]
    if stream:
        async with c.messages.stream(model=silent, max_tokens=20, messages=ask) as s:
            msg = await s.get_final_message()
            rid = s.response.headers["x-request-id"]
    else:
        raw = await c.messages.with_raw_response.create(model=silent, max_tokens=20, messages=ask)
        msg, rid = await raw.parse(), raw.headers["x-request-id"]
    rec = await usage_log.wait(rid)
    assert rec["estimated"] and rec["api"] == "messages"
    shown = (msg.usage.input_tokens, msg.usage.output_tokens)
    assert shown == (rec["input_tokens"], rec["output_tokens"]) == estimate()


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_show_the_estimate(
    router: Any, silent: str, usage_log: Any, stream: bool
) -> None:
    c = openai.AsyncOpenAI(base_url=router.url + "/v1", api_key=ALICE_KEY, max_retries=0)
    raw = await c.responses.with_raw_response.create(model=silent, input=ASK, stream=stream)
    if stream:
        events = [ev async for ev in raw.parse()]  # type: ignore[union-attr]
        usage = events[-1].response.usage
    else:
        usage = raw.parse().usage  # type: ignore[union-attr]
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert rec["estimated"] and rec["api"] == "responses"
    shown = (usage.input_tokens, usage.output_tokens)
    assert shown == (rec["input_tokens"], rec["output_tokens"]) == estimate()
