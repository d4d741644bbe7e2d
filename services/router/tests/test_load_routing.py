"""Routing strategies (issue 19): ``least_busy`` sends new work away from an upstream holding
requests open, ``latency`` to the deployment that answers first, a rule's strategy applies to
its targets; vLLM's queue from a health event counts as busy. Real upstream servers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from turnout_common.topics import HEALTH

from .test_access import MSG, until

KEY = "tk-alice-test-key-000000000000000000000000"


async def chat(router: Any, model: str) -> str:
    """One request as alice; the provider that served it."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            router.url + "/v1/chat/completions",
            json={"model": model, "messages": MSG},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return r.headers["x-turnout-provider"]


async def pool(world: Any, router: Any, name: str, strategy: str | None, **kw: Any) -> None:
    """``name`` on p1 and p2 with ``strategy``, and ``<name>-p1`` on p1 only."""
    extra = {"routing_strategy": strategy} if strategy else {}
    await world.put("model", f"{name}-a", world.model(f"{name}-a", name, "p1", **extra, **kw))
    await world.put("model", f"{name}-b", world.model(f"{name}-b", name, "p2", **extra, **kw))
    await world.put("model", f"{name}-p", world.model(f"{name}-p", f"{name}-p1", "p1"))
    await until(lambda: len(router.app.state.index.by_name.get(name, ())) == 2)
    await until(lambda: f"{name}-p1" in router.app.state.index.known_names)


async def held_on_p1(router: Any, name: str, fakes: Any, n: int) -> list[asyncio.Task[str]]:
    """``n`` requests held open on p1 (its upstream answers after 1.5 s)."""
    fakes["one"][0].behaviour.delay_s = 1.5
    held = [asyncio.create_task(chat(router, f"{name}-p1")) for _ in range(n)]
    await until(lambda: router.app.state.conditions.load.inflight.get("p1", 0) == n)
    return held


async def test_least_busy_avoids_the_upstream_holding_requests(
    router: Any, world: Any, unique: str, fakes: Any
) -> None:
    name = f"busy-{unique}"
    await pool(world, router, name, "least_busy")
    held = await held_on_p1(router, name, fakes, 3)
    served = [await chat(router, name) for _ in range(6)]
    assert served == ["p2"] * 6
    assert await asyncio.gather(*held) == ["p1"] * 3
    await until(lambda: router.app.state.conditions.load.inflight.get("p1", 0) == 0)


async def test_weighted_does_not_look_at_load(
    router: Any, world: Any, unique: str, fakes: Any
) -> None:
    """The same scene with the default strategy: p1 keeps getting its share."""
    name = f"wtd-{unique}"
    await pool(world, router, name, None)
    held = await held_on_p1(router, name, fakes, 3)
    served = await asyncio.gather(*(chat(router, name) for _ in range(16)))
    assert "p1" in served  # 16 fair coin flips: all p2 once in 65,536 runs
    await asyncio.gather(*held)


async def test_rule_strategy_applies_to_its_targets(
    router: Any, world: Any, unique: str, fakes: Any
) -> None:
    name = f"rule-{unique}"
    await pool(world, router, name, None)
    rule = {
        "id": f"r-{unique}",
        "name": f"r-{unique}",
        "enabled": True,
        "priority": 0,
        "model": f"{name}-alias",
        "targets": [name],
        "routing_strategy": "least_busy",
    }
    await world.put("model", f"{name}-x", world.model(f"{name}-x", f"{name}-alias", "p2"))
    await world.put("routing_rule", rule["id"], rule)
    await until(lambda: any(r.id == rule["id"] for r in router.app.state.index.rules))
    held = await held_on_p1(router, name, fakes, 2)
    served = [await chat(router, f"{name}-alias") for _ in range(4)]
    assert served == ["p2"] * 4
    await asyncio.gather(*held)


async def test_vllm_queue_from_health_events_counts_as_busy(
    router: Any, world: Any, unique: str, producer: Any
) -> None:
    """p2 reports 5 requests waiting + 2 running in vLLM: p1 (idle) gets the work."""
    name = f"queue-{unique}"
    await pool(world, router, name, "least_busy")
    load = router.app.state.conditions.load

    async def health(waiting: int | None, running: int | None) -> None:
        ev = {
            "provider_id": "p2",
            "status": "healthy",
            "circuit": "closed",
            "latency_ms": 5,
            "queue_waiting": waiting,
            "queue_running": running,
        }
        await producer.send(HEALTH.name, orjson.dumps(ev), key=b"p2")

    await health(5, 2)
    await until(lambda: load.queue.get("p2") == 7)
    try:
        assert [await chat(router, name) for _ in range(4)] == ["p1"] * 4
    finally:
        await health(None, None)
        await until(lambda: "p2" not in load.queue)


async def test_latency_prefers_the_deployment_that_answers_first(
    router: Any, world: Any, unique: str, fakes: Any
) -> None:
    name = f"fast-{unique}"
    await pool(world, router, name, "latency")
    fakes["one"][0].behaviour.delay_s = 0.3
    first = {await chat(router, name) for _ in range(2)}
    assert first == {"p1", "p2"}  # a deployment without a sample is tried first
    assert [await chat(router, name) for _ in range(6)] == ["p2"] * 6
    ttft = router.app.state.conditions.load.ttft
    assert ttft[f"{name}-a"] > ttft[f"{name}-b"]
