"""Issue 21 item 6 and issue 14 items 3-4: what a failed upstream tells a key holder.

Before: upstream error text reached clients verbatim, including an upstream echoing the
``Authorization`` header (``Incorrect API key provided: Bearer sk-…``), and transport errors
showed internal addresses (``cannot connect to 127.0.0.1:8099: [Errno 111]``). Now a client
gets one sentence per failure kind naming the provider; the detail goes to the router's log
with every configured key scrubbed, whatever its shape.

The upstream here is a real local server that echoes the ``Authorization`` header it was sent
(and the bare key) in its error bodies: as a 401, a 400, a 500, and as an error event in the
middle of a stream. The key has no well-known shape (no ``sk-``), so only the router's
knowledge of its configured keys can keep it out of the log.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from turnout_common.devinfra import free_port
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.waiting import wait_for as poll_until

from .conftest import Tenant, wait_for

SECRET = "zq" + secrets.token_hex(16)  # shaped like no key pattern the log filter knows


@dataclass
class Echo:
    """An upstream that refuses every request, quoting the credentials it was sent."""

    status: int = 401
    requests: int = 0

    def app(self) -> web.Application:
        async def chat(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            auth = request.headers.get("Authorization", "")
            body = await request.json()
            error = {"error": {
                "message": f"Incorrect API key provided: {auth.removeprefix('Bearer ')} "
                           f"(you sent 'Authorization: {auth}')",
                "type": "invalid_request_error", "code": "invalid_api_key"}}  # fmt: skip
            if not body.get("stream"):
                return web.json_response(error, status=self.status)
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"},
                                  "finish_reason": None}]}  # fmt: skip
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await resp.write(b"data: " + json.dumps(error).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            return resp

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        return app


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[Echo, str]]:
    upstream = Echo()
    server = LocalServer(upstream.app).start()
    yield upstream, server.url
    server.stop()


@pytest.fixture(scope="module")
def echoed(tenant: Callable[..., Tenant], echo: tuple[Echo, str]) -> Tenant:
    """A tenant whose model is served by the echoing upstream, with the key ``SECRET``."""
    return tenant(provider={"api_key": SECRET, "base_url": echo[1] + "/v1"})


def _assert_generic(text: str, provider: str) -> None:
    assert SECRET not in text, text
    assert "Incorrect API key" not in text and "Authorization" not in text, text
    assert provider in text, text  # names the provider


@pytest.mark.parametrize(("status", "kind"), [(401, "credentials"), (400, "invalid"),
                                              (500, "server or connection error")])  # fmt: skip
def test_an_upstream_echoing_the_key_does_not_leak_it(
    system: Any, echoed: Tenant, echo: tuple[Echo, str], status: int, kind: str
) -> None:
    upstream, _ = echo
    upstream.status = status
    before = upstream.requests
    r = echoed.chat()
    assert upstream.requests > before  # the upstream was really called and echoed the key
    assert r.status_code >= 400, r.text
    _assert_generic(r.text, echoed.model)
    assert kind in r.json()["error"]["message"]
    wait_for(lambda: r.headers["x-request-id"] in system.log())  # the detail is logged ...
    log = system.log()
    assert SECRET not in log  # ... with the key scrubbed
    assert "Incorrect API key provided: [REDACTED]" in log


def test_an_error_event_mid_stream_does_not_leak_the_key(system: Any, echoed: Tenant) -> None:
    body = {"model": echoed.model, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    h = {"Authorization": f"Bearer {echoed.keys[0]}"}
    with httpx.stream("POST", echoed.router + "/v1/chat/completions", json=body, headers=h,
                      timeout=30) as r:  # fmt: skip
        assert r.status_code == 200
        text = r.read().decode()
    assert '"content":"Hi"' in text  # what came before the error is passed through
    _assert_generic(text, echoed.model)
    assert "reported an error mid-stream (invalid_api_key)" in text, text
    rid = r.headers["x-request-id"]
    wait_for(lambda: f"request {rid}: provider" in system.log())
    assert SECRET not in system.log()


def test_transport_errors_do_not_show_addresses(tenant: Callable[..., Tenant]) -> None:
    port = free_port()  # nothing listens there
    t = tenant(provider={"base_url": f"http://127.0.0.1:{port}/v1"})
    r = t.chat()
    assert r.status_code in (502, 503), r.text
    text = r.text
    assert str(port) not in text and "127.0.0.1" not in text and "Errno" not in text, text
    assert "could not be reached" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 60  # a 503 after every attempt failed


def test_no_healthy_upstream_says_when_to_retry(tenant: Callable[..., Tenant]) -> None:
    """Issue 14 item 3: the router's own "health says no" answer carries ``Retry-After``.

    Failed attempts on a dead provider trip its circuit (the health-worker's passive check
    reads them from the usage topic); from then on the router refuses with
    ``no_healthy_upstream`` without calling it.
    """
    port = free_port()
    t = tenant(provider={"base_url": f"http://127.0.0.1:{port}/v1"},
               tier={"rpm_limit": 10_000, "tpm_limit": 10_000_000})  # fmt: skip

    def refused_for_health() -> httpx.Response | None:
        r = t.chat()
        assert r.status_code == 503, r.text
        return r if r.json()["error"]["code"] == "no_healthy_upstream" else None

    r = poll_until(refused_for_health, timeout=60, interval=0.1)
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "127.0.0.1" not in r.text and str(port) not in r.text
