"""Issue 16 item 4 (seed 003 ``POST /models/select``): which model would serve, and why —
calling no upstream and billing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for


def test_select_explains_without_calling_anything(system: Any) -> None:
    fake = FakeOpenAI(name="sel")
    server = LocalServer(fake.app).start()
    tag = uuid.uuid4().hex[:6]
    cfg, h = system.url("config") + "/api/v1", system.admin
    small, big = f"sel-small-{tag}", f"sel-big-{tag}"
    try:
        with httpx.Client(headers=h, timeout=10) as c:
            steps: list[tuple[str, dict[str, Any]]] = [
                ("/providers", {"name": f"sel-{tag}", "kind": "vllm",
                                "base_url": server.url + "/v1"}),
                ("/models", {"provider": f"sel-{tag}", "upstream_model": "b", "name": big,
                             "context_window": 100_000, "input_price_per_mtok": "1",
                             "output_price_per_mtok": "1"}),
                ("/models", {"provider": f"sel-{tag}", "upstream_model": "s", "name": small,
                             "context_window": 64, "fallbacks": [big],
                             "capabilities": {"tools": False}}),
                ("/users", {"id": f"sel-{tag}"}),
            ]  # fmt: skip
            for path, body in steps:
                assert c.post(cfg + path, json=body).status_code == 201
            key = c.post(cfg + "/keys", json={"user_id": f"sel-{tag}"}).json()["key"]
        url = system.url("router") + "/v1/models/select"
        auth = {"Authorization": f"Bearer {key}"}
        tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        body = {"model": small, "messages": [{"role": "user", "content": "hi"}], "tools": tools}

        def known() -> bool:
            return httpx.post(url, json=body, headers=auth).status_code == 200

        wait_for(known, timeout=15)
        out = httpx.post(url, json=body, headers=auth).json()
        assert out["error"] is None
        assert [c["model"] for c in out["candidates"]] == [big]  # the fallback serves
        skipped = {s["model"]: s for s in out["skipped"]}
        assert skipped[small]["reason"] == "capability"
        assert "tools" in skipped[small]["detail"]
        # a prompt too long for every candidate: the error a real request would get
        long = {"model": big, "messages": [{"role": "user", "content": "w " * 200_000}]}
        out = httpx.post(url, json=long, headers=auth).json()
        assert out["candidates"] == [] and out["error"]["code"] == "context_length_exceeded"
        assert out["skipped"][0]["reason"] == "context_window"
        assert fake.served == 0 and not fake.requests  # nothing was called
        assert httpx.post(url, json=body).status_code == 401
        rows = httpx.get(system.url("metering") + "/api/v1/usage",
                         params={"user_id": f"sel-{tag}"}, headers=h).json()  # fmt: skip
        assert rows["total"] == 0  # nothing metered
    finally:
        server.stop()
