"""vLLM's queue (issue 19): scraped from its /metrics at each probe and published with the
health state, so the router's least_busy strategy sees a saturated box."""

from __future__ import annotations

import uuid

from aiohttp import web

from turnout_common.testing.servers import LocalServer
from turnout_health.probes import parse_vllm_queue
from turnout_health.testing import Harness, provider_data

METRICS = """# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="llama-a"}} {running}
vllm:num_requests_running{{engine="0",model_name="llama-b"}} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="llama-a"}} {waiting}
vllm:num_requests_waiting_by_reason{{reason="capacity"}} 99.0
vllm:num_requests_swapped 7
"""


def test_parse_sums_each_series_over_its_models() -> None:
    text = METRICS.format(running="2.0", waiting="3.0")
    assert parse_vllm_queue(text) == (3.0, 3.0)
    assert parse_vllm_queue("vllm:num_requests_waiting 4\n") == (4.0, None)
    assert parse_vllm_queue("# nothing here\nother_metric 1\n") == (None, None)
    assert parse_vllm_queue('vllm:num_requests_waiting{a="1"} NaNx\n') == (None, None)


def fake_vllm(queue: dict[str, str]) -> web.Application:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"data": []})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=METRICS.format(**queue), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/health", ok)
    app.router.add_get("/v1/models", ok)
    app.router.add_get("/metrics", metrics)
    return app


async def test_queue_is_published_when_it_moves(harness: Harness) -> None:
    queue = {"running": "2.0", "waiting": "5.0"}
    with LocalServer(lambda: fake_vllm(queue)) as server:
        pid = str(uuid.uuid4())
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy" and e.queue_waiting == 5)
        first = harness.events_for(pid)[-1]
        assert (first.queue_waiting, first.queue_running) == (5.0, 3.0)
        queue.update(running="0", waiting="0")
        await harness.wait_event(pid, lambda e: e.queue_waiting == 0 and e.queue_running == 1)
        # the state did not change: the queue alone was published
        assert {(e.status, e.circuit) for e in harness.events_for(pid)} == {("healthy", "closed")}
