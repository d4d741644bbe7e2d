"""Chaos 4: config-api is killed (SIGKILL) under load.

The router needs config-api only to bootstrap (the snapshot); afterwards it follows
``turnout.config.v1``. So a running router keeps serving from memory and stays ready (taking
every router out of a load balancer because the admin API is down would turn an admin outage
into a data-plane outage). A router that *starts* while config-api is down cannot serve: it
stays alive and not ready (503) and keeps retrying, and becomes ready once config-api is back.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from turnout_common.devinfra import free_port

from .conftest import ChaosSystem, Load, assert_counted_once, poll, readyz, report

pytestmark = pytest.mark.chaos


async def test_router_serves_from_memory_while_config_api_is_down(
    chaos_system: ChaosSystem,
) -> None:
    system = chaos_system
    system.add_upstream("primary")
    system.configure([("primary", 0)])
    router = system.url("router")
    started = time.monotonic()

    samples: list[int] = []  # the running router's /readyz, sampled the whole time
    sampling = asyncio.Event()

    async def sample() -> None:
        while not sampling.is_set():
            samples.append(await readyz(router))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    load = Load(router, system.key, concurrency=8, stream_every=4).start()
    await load.until(300)
    system.kill("config-api")
    killed_at = load.done
    samples_at_kill = len(samples)

    # a second router started now cannot bootstrap: alive, not ready, retrying
    port = free_port()
    router_2 = f"http://127.0.0.1:{port}"
    system.start(
        "router",
        port=port,
        tag="-2",
        env={
            "TURNOUT_STATE_DIR": str(system.root / "state-2"),
            "TURNOUT_SNAPSHOT_TIMEOUT_S": "1",
        },
    )
    log_2 = system.logs / "router-2.log"

    async def retrying() -> bool:
        return log_2.exists() and "starting config snapshot failed" in log_2.read_text()

    await poll(retrying, 60, "the second router to retry its snapshot", system.diagnostics)
    assert system.alive("router-2")
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.get(router_2 + "/readyz")
        assert r.status_code == 503 and r.json()["checks"]["config"] is False, r.text
        r = await c.post(
            router_2 + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {system.key}"},
            json={"model": "chaos-chat", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 503, r.text

    await load.until(killed_at + 1000)
    load.stop()
    await load.wait()
    sampling.set()
    await sampler
    assert load.errors == [], load.errors[:5]
    assert len(samples) > samples_at_kill and set(samples) == {200}, samples
    await system.wait_metered(len(load.ok))  # metering does not need config-api either
    await poll(
        lambda: _others(system, 1), 30, "the refused request's usage record", system.diagnostics
    )
    await assert_counted_once(system, load, refused=1)  # the one the second router refused

    # config-api comes back: the second router bootstraps, and changes flow again
    t0 = time.monotonic()
    system.start("config-api")
    await system.await_ready("config-api")
    await system.await_ready("router-2", router_2)
    recovered_s = time.monotonic() - t0
    async with httpx.AsyncClient(timeout=10) as c:
        auth = {"Authorization": f"Bearer {system.key}"}
        body = {"model": "chaos-chat", "messages": [{"role": "user", "content": "hi"}]}
        r = await c.post(router_2 + "/v1/chat/completions", headers=auth, json=body)
        assert r.status_code == 200, r.text
        r = await c.delete(
            system.url("config-api") + f"/api/v1/keys/{system.key_id}", headers=system.admin
        )
        assert r.status_code == 200, r.text

        async def refused_by_both() -> bool:
            codes = [
                (await c.post(url + "/v1/chat/completions", headers=auth, json=body)).status_code
                for url in (router, router_2)
            ]
            return codes == [401, 401]

        await poll(refused_by_both, 30, "both routers to refuse the revoked key")
    report(
        "config-api SIGKILL",
        requests=len(load.ok),
        errors=len(load.errors),
        served_while_down=len(load.ok) - killed_at,
        readyz_samples=len(samples),
        readyz_not_200=sum(s != 200 for s in samples),
        second_router_ready_after_config_api_back_s=round(recovered_s, 2),
        wall_s=round(time.monotonic() - started, 1),
    )


async def _others(system: ChaosSystem, n: int) -> bool:
    return bool((await system.usage_stats())["others"] == n)
