"""Client disconnect mid-stream: the upstream request is cancelled and usage is still emitted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web

from turnout_common.testing.servers import LocalServer

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"


class EndlessUpstream:
    def __init__(self) -> None:
        self.chunks_sent = 0
        self.cancelled = False

    def app(self) -> web.Application:
        async def chat(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            try:
                for _ in range(200):
                    chunk = (
                        b'data: {"id":"x","object":"chat.completion.chunk","created":1,'
                        b'"model":"m","choices":[{"index":0,"delta":{"content":"word "}}]}\n\n'
                    )
                    await resp.write(chunk)
                    self.chunks_sent += 1
                    await asyncio.sleep(0.05)
            except (ConnectionError, asyncio.CancelledError):
                self.cancelled = True
                raise
            return resp

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        return app


async def test_client_abort_cancels_upstream_and_emits_usage(
    router: Any, world: Any, unique: str, usage_log: Any
) -> None:
    up = EndlessUpstream()
    with LocalServer(up.app) as srv:
        await world.put("provider", f"p-{unique}", world.provider(f"p-{unique}", srv.url + "/v1"))
        await world.put("model", f"m-{unique}", world.model(f"m-{unique}", unique, f"p-{unique}"))
        deadline = time.monotonic() + 5
        while unique not in router.app.state.index.known_names:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        body = {"model": unique, "stream": True, "messages": [{"role": "user", "content": "go"}]}
        async with aiohttp.ClientSession() as s:
            resp = await s.post(
                router.url + "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {ALICE_KEY}"},
            )
            rid = resp.headers["x-request-id"]
            got = 0
            async for _ in resp.content.iter_any():
                got += 1
                if got >= 3:
                    break
            resp.close()  # the client goes away mid-stream
        rec = await usage_log.wait(rid)
        assert rec["outcome"] == "client_abort" and rec["status"] == 499
        assert rec["estimated"] is True and rec["output_tokens"] >= 3  # "word " x chunks / 4
        deadline = time.monotonic() + 5
        while not up.cancelled:
            assert time.monotonic() < deadline, "the upstream request was not cancelled"
            await asyncio.sleep(0.02)
        assert up.chunks_sent < 200
