"""Fallback chain: connect refused, 500, 429, timeout before the first byte; never after it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest
from aiohttp import web

from turnout_common.devinfra import free_port
from turnout_common.testing.servers import LocalServer

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
MSG = [{"role": "user", "content": "say hello to the test please"}]


def client(router: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=router.url + "/v1", api_key=ALICE_KEY, max_retries=0)


async def visible(router: Any, name: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while name not in router.app.state.index.known_names:
        assert time.monotonic() < deadline, f"{name} never reached the router"
        await asyncio.sleep(0.01)


async def primary_on(world: Any, router: Any, unique: str, url: str, **prov: Any) -> str:
    """A provider at ``url`` serving model ``<unique>`` that falls back to ``backup``."""
    await world.put("provider", f"p-{unique}", world.provider(f"p-{unique}", url, **prov))
    await world.put(
        "model",
        f"m-{unique}",
        world.model(f"m-{unique}", unique, f"p-{unique}", fallbacks=["backup"]),
    )
    await visible(router, unique)
    return unique


async def test_fallback_when_primary_refuses_connections(
    router: Any, world: Any, unique: str, usage_log: Any
) -> None:
    name = await primary_on(world, router, unique, f"http://127.0.0.1:{free_port()}/v1")
    raw = await client(router).chat.completions.with_raw_response.create(model=name, messages=MSG)
    assert raw.headers["x-turnout-provider"] == "p2"
    assert raw.headers["x-turnout-model"] == "backup"
    assert raw.headers["x-turnout-fallbacks"] == "1"
    rec = await usage_log.wait(raw.headers["x-request-id"])
    assert [a["provider"] for a in rec["attempts"]] == [f"p-{unique}", "p2"]
    assert rec["attempts"][0]["error"] == "upstream_unreachable"
    assert (rec["model"], rec["input_tokens"], rec["output_tokens"], rec["fallbacks"]) == (
        "backup",
        9,
        9,
        1,
    )
    assert rec["cost_usd"] == "0.000027000"  # priced at the serving deployment (1.00 / 2.00)


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, None), (429, "0")])
async def test_fallback_on_5xx_and_429(
    router: Any, world: Any, unique: str, fakes: Any, status: int, retry_after: str | None
) -> None:
    fake, srv = fakes["three"]
    fake.behaviour.status = status
    fake.behaviour.retry_after = retry_after
    name = await primary_on(world, router, unique, srv.url + "/v1")
    raw = await client(router).chat.completions.with_raw_response.create(model=name, messages=MSG)
    assert raw.headers["x-turnout-model"] == "backup"
    assert fake.requests, "the primary was tried first"


async def test_fallback_on_timeout_before_first_byte(
    router: Any, world: Any, unique: str, fakes: Any
) -> None:
    fake, srv = fakes["three"]
    fake.behaviour.delay_s = 3.0
    name = await primary_on(world, router, unique, srv.url + "/v1", timeout_s=0.3)
    raw = await client(router).chat.completions.with_raw_response.create(model=name, messages=MSG)
    assert raw.headers["x-turnout-model"] == "backup"
    # streams: the first byte must arrive within ttft_timeout_s (1 s in these tests)
    stream = await client(router).chat.completions.create(model=name, messages=MSG, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.startswith("Hello")


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
        request.transport.close()  # the upstream dies after the first byte
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def test_no_fallback_after_first_byte(
    router: Any, world: Any, unique: str, fakes: Any, usage_log: Any
) -> None:
    with LocalServer(dies_mid_stream) as srv:
        name = await primary_on(world, router, unique, srv.url + "/v1")
        served_before = fakes["two"][0].served
        raw = await client(router).chat.completions.with_raw_response.create(
            model=name, messages=MSG, stream=True
        )
        pieces: list[str] = []

        async def consume() -> None:
            async for c in raw.parse():
                pieces.append(c.choices[0].delta.content or "" if c.choices else "")

        with pytest.raises(openai.APIError):
            await consume()
        assert "".join(pieces) == "Hi"
        assert fakes["two"][0].served == served_before, "no fallback after the first byte"
        rec = await usage_log.wait(raw.headers["x-request-id"])
        assert rec["outcome"] == "upstream_error" and rec["model"] == name


async def test_all_attempts_fail(router: Any, world: Any, unique: str, fakes: Any) -> None:
    fake, srv = fakes["three"]
    fake.behaviour.status = 500
    await world.put("provider", f"p-{unique}", world.provider(f"p-{unique}", srv.url + "/v1"))
    await world.put("model", f"m-{unique}", world.model(f"m-{unique}", unique, f"p-{unique}"))
    await visible(router, unique)
    with pytest.raises(openai.APIStatusError) as info:
        await client(router).chat.completions.create(model=unique, messages=MSG)
    assert info.value.status_code == 502
    assert info.value.response.headers["x-turnout-provider"] == f"p-{unique}"
    assert len(fake.requests) == 2  # one attempt + one retry round
    fake.behaviour.status, fake.behaviour.delay_s = 200, 3.0
    await world.put(
        "provider", f"p-{unique}", world.provider(f"p-{unique}", srv.url + "/v1", timeout_s=0.2)
    )
    await asyncio.sleep(0.3)
    with pytest.raises(openai.APIStatusError) as info:
        await client(router).chat.completions.create(model=unique, messages=MSG)
    assert info.value.status_code == 504


async def test_a_deprecated_deployment_is_said_and_serves_last(
    router: Any, world: Any, unique: str, fakes: Any
) -> None:
    url = fakes["three"][1].url + "/v1"
    await world.put("provider", f"p-{unique}", world.provider(f"p-{unique}", url))
    old = world.model(f"m-{unique}-old", unique, f"p-{unique}", deprecated=True)
    await world.put("model", f"m-{unique}-old", old)
    await visible(router, unique)
    raw = await client(router).chat.completions.with_raw_response.create(model=unique, messages=MSG)
    assert raw.headers["x-turnout-deprecated"] == "true"  # the only deployment: it still serves
    new = world.model(f"m-{unique}-new", unique, "p2", upstream_model="up-backup", priority=9)
    await world.put("model", f"m-{unique}-new", new)
    deadline = time.monotonic() + 10
    while True:  # once the config event arrives, the newer deployment goes first
        raw = await client(router).chat.completions.with_raw_response.create(
            model=unique, messages=MSG
        )
        if raw.headers["x-turnout-provider"] == "p2":
            break
        assert time.monotonic() < deadline, "the non-deprecated deployment never went first"
        await asyncio.sleep(0.02)
    assert "x-turnout-deprecated" not in raw.headers
