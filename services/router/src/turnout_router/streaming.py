"""Non-stream and SSE responses. Streams are passed through event by event (never buffered);
a client disconnect cancels the upstream request and still yields a usage record."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from granian._granian import RSGIProtocolClosed as ProtocolClosed

from turnout_common.errors import UpstreamError
from turnout_common.http1 import HttpClientError, Response
from turnout_router.adapters.base import Adapter, PreparedRequest, UsageCounts
from turnout_router.context import RequestContext
from turnout_router.routing import Candidate
from turnout_router.service import Gateway

SSE_HEADERS = [("cache-control", "no-cache"), ("x-accel-buffering", "no")]


async def unary(gw: Gateway, ctx: RequestContext, chain: list[Candidate], proto: Any) -> None:
    async def call(
        adapter: Adapter, req: PreparedRequest, cand: Candidate, timeout: float
    ) -> tuple[bytes, UsageCounts]:
        _, body = await gw.client.fetch(req, adapter, timeout)
        out, usage = adapter.parse(ctx.purpose, body, cand.deployment.name)
        if not usage.present:  # estimated from the answer's text (a door counted its own)
            door = ctx.door
            ctx.output_chars = adapter.output_chars(out) if door is None else door.output_chars
        return out, usage

    out, usage = await gw.attempts(ctx, chain, call)
    ctx.usage = usage
    # the cost is the same figure metering records for this request
    proto.response_bytes(200, ctx.headers() + ctx.money_headers(gw.budgets), out)


async def stream(gw: Gateway, ctx: RequestContext, chain: list[Candidate], proto: Any) -> None:
    ttft = gw.settings.ttft_timeout_s

    async def call(
        adapter: Adapter, req: PreparedRequest, cand: Candidate, timeout: float
    ) -> tuple[Adapter, Response, bytes]:
        resp, first = await gw.client.open_stream(req, adapter, min(ttft, timeout))
        return adapter, resp, first

    adapter, resp, first = await gw.attempts(ctx, chain, call)
    assert ctx.served is not None and ctx.inbound is not None
    tr = adapter.stream(ctx.served.deployment.name, include_usage=ctx.inbound.include_usage)
    transport = proto.response_stream(200, ctx.headers("text/event-stream") + SSE_HEADERS)
    task = asyncio.current_task()
    assert task is not None
    flags = {"done": False, "aborted": False}

    def on_disconnect(_: Any) -> None:
        if not flags["done"]:
            flags["aborted"] = True
            task.cancel()

    watcher = asyncio.ensure_future(proto.client_disconnect())
    watcher.add_done_callback(on_disconnect)

    # OpenAI streams with usage: the usage chunk also says what the request cost (+ credits)
    priced = ctx.door is None and ctx.inbound.include_usage

    async def send(events: list[bytes]) -> None:
        for ev in events:
            if priced and b'"usage":{' in ev:
                ev = _with_turnout(gw, ctx, tr.usage, ev)
            await transport.send_bytes(ev)
        if events and ctx.ttft_ms is None:
            ctx.ttft_ms = round((time.perf_counter() - ctx.t0) * 1000, 3)

    remaining = max(0.001, ctx.t0 + gw.settings.request_timeout_s - time.perf_counter())
    try:
        async with asyncio.timeout(remaining):
            await send(tr.feed(first))
            async for data in resp.chunks():
                await send(tr.feed(data))
            await send(tr.close())
    except asyncio.CancelledError:
        if not flags["aborted"]:
            raise
        task.uncancel()
        _aborted(ctx)
    except ProtocolClosed:
        _aborted(ctx)
    except (HttpClientError, TimeoutError) as exc:
        # The upstream connection keeps its error, and the error's traceback this frame: the
        # client's stream (``transport``) would stay open until a garbage collection.
        exc.__traceback__ = None
        ctx.status, ctx.outcome, ctx.error_code = 502, "upstream_error", "stream_interrupted"
        err = UpstreamError(
            f"the upstream stream broke: {type(exc).__name__}", code="stream_interrupted"
        )
        event = (
            ctx.door.stream_error(err)
            if ctx.door is not None
            else b"data: " + orjson.dumps(err.to_dict()) + b"\n\n"
        )
        try:
            await transport.send_bytes(event)
        except (ProtocolClosed, RuntimeError):
            pass
    finally:
        flags["done"] = True
        watcher.remove_done_callback(on_disconnect)
        watcher.cancel()
        resp.close()  # drops the upstream connection if it is still streaming
        ctx.usage = tr.usage
        ctx.output_chars = tr.output_chars


def _with_turnout(gw: Gateway, ctx: RequestContext, usage: UsageCounts, ev: bytes) -> bytes:
    """The final usage chunk with an extra ``turnout`` object (OpenAI clients ignore unknown
    fields): ``cost_usd`` (exactly what metering records) and ``credits_remaining_usd`` (null
    without a budget or prepaid credit)."""
    if not ev.startswith(b"data: "):
        return ev
    try:
        chunk = orjson.loads(ev[6:])
    except orjson.JSONDecodeError:
        return ev
    ctx.usage = usage
    cost = ctx.cost()
    if not isinstance(chunk, dict) or cost is None:
        return ev
    left = ctx.credits_remaining(gw.budgets)
    chunk["turnout"] = {"cost_usd": cost, "credits_remaining_usd": left}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _aborted(ctx: RequestContext) -> None:
    ctx.status, ctx.outcome, ctx.error_code = 499, "client_abort", "client_closed_request"
