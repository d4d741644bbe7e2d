"""Issue 16 item 3 (first part): a non-streaming answer says what it cost, exactly as metered."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for


def test_cost_header_equals_the_metered_cost(system: Any) -> None:
    fake = FakeOpenAI(name="priced")
    server = LocalServer(fake.app).start()
    tag = uuid.uuid4().hex[:6]
    cfg, h = system.url("config") + "/api/v1", system.admin
    try:
        with httpx.Client(headers=h, timeout=10) as c:
            for path, body in (
                ("/providers", {"name": f"priced-{tag}", "kind": "vllm",
                                "base_url": server.url + "/v1"}),
                ("/models", {"provider": f"priced-{tag}", "upstream_model": "m",
                             "name": f"priced-{tag}", "input_price_per_mtok": "0.15",
                             "output_price_per_mtok": "0.6"}),
                ("/users", {"id": f"payer-{tag}"}),
            ):  # fmt: skip
                assert c.post(cfg + path, json=body).status_code == 201
            key = c.post(cfg + "/keys", json={"user_id": f"payer-{tag}"}).json()["key"]
        body = {"model": f"priced-{tag}", "messages": [{"role": "user", "content": "hi there"}]}
        auth = {"Authorization": f"Bearer {key}"}

        def answer() -> httpx.Response | None:
            r = httpx.post(system.url("router") + "/v1/chat/completions", json=body, headers=auth)
            return r if r.status_code == 200 else None

        r = wait_for(answer, timeout=15)
        cost = r.headers["x-turnout-cost-usd"]
        # 5 input tokens x 0.15 + 9 output tokens x 0.6 per 1M tokens
        assert cost == "0.000006150", cost
        rid = r.headers["x-request-id"]

        def metered() -> str | None:
            url = system.url("metering") + "/api/v1/usage"
            rows = httpx.get(url, params={"user_id": f"payer-{tag}"}, headers=h).json()["data"]
            return next((row["cost_usd"] for row in rows if row["request_id"] == rid), None)

        assert wait_for(metered, timeout=15) == cost
    finally:
        server.stop()
