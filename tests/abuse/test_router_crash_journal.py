"""Issue 21 item 11: a router killed mid-stream still leaves a usage record.

Before: the usage record was built when the answer ended, so a killed router left none at
all, though the upstream billed the tokens. Now the in-flight journal lets the restarted
router emit it (``outcome: router_crash``, tokens estimated and marked so).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from turnout.ports import holder
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for


def _provision(stack: Any, upstream_url: str) -> str:
    cfg, h = stack.url("config") + "/api/v1", stack.admin
    with httpx.Client(headers=h, timeout=10) as c:
        for path, body in (
            ("/providers", {"name": "slow", "kind": "vllm", "base_url": upstream_url + "/v1"}),
            ("/models", {"provider": "slow", "upstream_model": "m", "name": "slow-chat",
                         "input_price_per_mtok": "1000", "output_price_per_mtok": "1000"}),
            ("/users", {"id": "crashy"}),
        ):  # fmt: skip
            assert c.post(cfg + path, json=body).status_code == 201
        key: str = c.post(cfg + "/keys", json={"user_id": "crashy"}).json()["key"]
    return key


def test_a_router_killed_mid_stream_leaves_a_record(
    start_own_system: Callable[..., AbstractContextManager[Any]],
) -> None:
    fake = FakeOpenAI(name="slow")
    fake.behaviour.reply = " ".join(["tok"] * 200)
    fake.behaviour.chunk_delay_s = 0.05  # a 10 s stream
    server = LocalServer(fake.app).start()
    try:
        with start_own_system("crash") as stack:
            key = _provision(stack, server.url)
            router = stack.url("router")
            auth = {"Authorization": f"Bearer {key}"}
            body = {"model": "slow-chat", "stream": True,
                    "messages": [{"role": "user", "content": "tell me a long story"}]}  # fmt: skip

            def routable() -> bool:
                r = httpx.get(router + "/v1/models", headers=auth)
                return r.status_code == 200 and "slow-chat" in r.text

            wait_for(routable, timeout=20)
            first = threading.Event()

            def stream() -> None:
                try:
                    with httpx.stream("POST", router + "/v1/chat/completions", json=body,
                                      headers=auth, timeout=30) as r:  # fmt: skip
                        for _ in r.iter_lines():
                            first.set()
                except httpx.HTTPError:
                    pass  # the router died under it

            t = threading.Thread(target=stream)
            t.start()
            assert first.wait(10)
            pid = int(holder(int(router.rsplit(":", 1)[1])).split()[1])
            os.kill(pid, signal.SIGKILL)  # mid-stream
            t.join(30)

            def crash_rows() -> list[dict[str, Any]]:
                r = httpx.get(stack.url("metering") + "/api/v1/usage",
                              params={"user_id": "crashy"}, headers=stack.admin)  # fmt: skip
                return [row for row in r.json()["data"] if row["outcome"] == "router_crash"]

            wait_for(lambda: len(crash_rows()) == 1, timeout=60)
            row = crash_rows()[0]
            assert row["estimated"] is True and row["input_tokens"] > 0
            assert row["model"] == "slow-chat" and row["provider"] == "slow"
            assert float(row["cost_usd"]) > 0
            assert "recovered 1 request(s)" in stack.log()
    finally:
        server.stop()
