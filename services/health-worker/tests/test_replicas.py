"""Two workers on one schema: one probes, the other stands by and takes over."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from aiohttp import web

from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_health.app import create_app
from turnout_health.testing import (
    FAST,
    Harness,
    Snapshot,
    make_settings,
    provider_data,
    running,
    wait_until,
)


def counting_upstream(hits: list[str]) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"status": "ok"})

    async def models(_: web.Request) -> web.Response:  # a llama.cpp probe lists models last
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    return app


async def test_two_workers_do_not_double_the_probing(
    harness: Harness, database_url: str, kafka_settings: KafkaSettings
) -> None:
    hits: list[str] = []
    schema = f"health_{uuid.uuid4().hex[:8]}"
    pid = str(uuid.uuid4())
    snapshot = Snapshot()  # this provider is only in the pair's snapshot
    with LocalServer(counting_upstream(hits)) as upstream, LocalServer(snapshot.app()) as config:
        snapshot.entities.append(
            {
                "revision": 1,
                "entity": "provider",
                "entity_id": pid,
                "op": "upsert",
                "data": provider_data(pid, upstream.url, kind="llamacpp"),
            }
        )
        apps = []
        for _ in range(2):
            common, hs = make_settings(database_url, kafka_settings, config.url, schema, **FAST)
            apps.append(create_app(common, hs))
        stacks = [contextlib.AsyncExitStack() for _ in apps]
        try:
            for app, stack in zip(apps, stacks, strict=True):
                await stack.enter_async_context(running(app))
            leases = [app.state.worker.lease for app in apps]
            await harness.wait_event(pid, lambda e: e.status == "healthy")
            await wait_until(
                lambda: apps[0].state.worker.prober.probes + apps[1].state.worker.prober.probes >= 2
            )
            leader = next(i for i, lease in enumerate(leases) if lease.is_leader)
            standby = apps[1 - leader]
            hits.clear()
            start = apps[leader].state.worker.prober.probes
            await asyncio.sleep(1.5)
            probed = apps[leader].state.worker.prober.probes - start
            assert sum(lease.is_leader for lease in leases) == 1
            assert standby.state.worker.prober.probes == 0
            assert probed >= 3
            assert abs(len(hits) - probed) <= 1  # every /health hit came from the leader

            # the leader goes away: the standby takes over and resumes the published state
            await stacks[leader].aclose()
            await wait_until(lambda: standby.state.worker.prober.probes >= 3)
            assert standby.state.worker.lease.is_leader
        finally:
            for stack in stacks:
                await stack.aclose()
    assert [(e.status, e.circuit) for e in harness.events_for(pid)] == [("healthy", "closed")]
