"""Issue 19: limits and budgets that hold across router replicas (real processes).

One system (config-api, metering, health-worker, one broker) and two sets of extra router
processes: three with ``TURNOUT_REDIS_URL`` (a redis-server of the test's own, so it can be
stopped and started) and, for the figures before the change, the system's own router plus two
more without it. The same load is sent over 1, 2 and 3 replicas of each set; the shared set
must hold the limit and the budget whatever the number of replicas, the per-replica set's
overshoot is reported next to it (``pytest -s`` shows the ``[chaos]`` lines).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from turnout_common.devinfra import free_port, port_open

from .conftest import ChaosSystem, Load, metric, poll, report

pytestmark = pytest.mark.chaos

PRICE = "1000"  # USD per 1M tokens: one answer here costs $0.02 to $0.04
BUDGET = Decimal("0.50")
CONTENT = "x" * 40  # the mock counts (40 + 16) / 4 = 14 prompt tokens


class RedisServer:
    """A redis-server process of this test's own (memory only) on a free port."""

    def __init__(self, root: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        self.exe, self.root, self.port = exe, root, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.proc = subprocess.Popen(
            [self.exe, *args, "--appendonly", "no"], cwd=self.root, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def replicas(chaos_system: ChaosSystem, redis_server: RedisServer) -> dict[str, list[str]]:
    """``shared``: three routers on the test's Redis; ``local``: the system's router and two
    more with per-replica limits. All configured with one upstream and a priced model."""
    system = chaos_system
    system.add_upstream("gpu", delay_ms=20)
    system.configure([("gpu", 0)])
    api = system.url("config-api") + "/api/v1"
    r = httpx.post(
        f"{api}/models",
        headers=system.admin,
        json={
            "provider": "gpu",
            "upstream_model": "mock-pricey",
            "name": "pricey",
            "purposes": ["chat"],
            "input_price_per_mtok": PRICE,
            "output_price_per_mtok": PRICE,
        },
        timeout=15,
    )
    assert r.status_code == 201, r.text
    urls: dict[str, list[str]] = {"shared": [], "local": [system.url("router")]}
    for mode, n in (("shared", 3), ("local", 2)):
        for i in range(n):
            port = free_port()
            env = {"TURNOUT_STATE_DIR": str(system.root / f"state-{mode}{i}")}
            if mode == "shared":
                env |= {"TURNOUT_REDIS_URL": redis_server.url, "TURNOUT_REDIS_PREFIX": "t19:"}
            system.start("router", port=port, tag=f"-{mode}{i}", env=env)
            urls[mode].append(f"http://127.0.0.1:{port}")
    every = urls["shared"] + urls["local"][1:]
    asyncio.run(_all_ready(system, every))
    return urls


async def _all_ready(system: ChaosSystem, urls: list[str]) -> None:
    for url in urls:
        await system.await_ready("router", url)


def tenant(
    system: ChaosSystem, name: str, routers: list[str], key: dict[str, Any], **user: Any
) -> str:
    """A user of the unlimited ``chaos`` tier (with ``user``'s fields) and a key (with
    ``key``'s), known to every one of ``routers``."""
    api = system.url("config-api") + "/api/v1"
    with httpx.Client(headers=system.admin, timeout=15) as c:
        r = c.post(f"{api}/users", json={"id": name, "tier": "chaos", **user})
        assert r.status_code == 201, r.text
        r = c.post(f"{api}/keys", json={"user_id": name, "name": name, **key})
        assert r.status_code == 201, r.text
        key: str = r.json()["key"]
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=5, headers={"Authorization": f"Bearer {key}"}) as c:
        for url in routers:
            while c.get(url + "/v1/models").status_code != 200:
                assert time.monotonic() < deadline, system.diagnostics()
                time.sleep(0.1)
    return key


async def burst(routers: list[str], key: str, n: int, concurrency: int, **body: Any) -> list[int]:
    """``n`` chat requests, ``concurrency`` at a time, spread round robin over ``routers``."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    payload = {"messages": [{"role": "user", "content": CONTENT}], **body}

    async def one(s: aiohttp.ClientSession, i: int) -> int:
        async with sem, s.post(routers[i % len(routers)] + "/v1/chat/completions",
                               json=payload, headers=headers) as r:  # fmt: skip
            await r.read()
            return r.status

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        return list(await asyncio.gather(*(one(s, i) for i in range(n))))


def test_rpm_limit_holds_across_replicas(
    chaos_system: ChaosSystem, replicas: dict[str, list[str]]
) -> None:
    """A key limited to 30 rpm: 90 requests over 1, 2, 3 replicas get 30 through (plus the
    refill while they run, one every 2 s), with Redis; per replica, 30 each."""
    system = chaos_system
    figures: dict[str, list[int]] = {"shared": [], "local": []}
    for mode, urls in replicas.items():
        for n in (1, 2, 3):
            key = tenant(system, f"rpm-{mode}-{n}", urls[:n], {"rpm_limit": 30})
            t0 = time.monotonic()
            codes = asyncio.run(burst(urls[:n], key, 90, 9, model="chaos-chat", max_tokens=2))
            refill = int((time.monotonic() - t0) / 2)
            assert set(codes) <= {200, 429}, codes
            ok = codes.count(200)
            figures[mode].append(ok)
            if mode == "shared":
                assert 30 <= ok <= 31 + refill, (n, ok, refill)
    report("30 rpm key, 90 requests over 1/2/3 replicas", **figures)


def test_budget_holds_across_replicas(
    chaos_system: ChaosSystem, replicas: dict[str, list[str]]
) -> None:
    """A user with a $0.50 budget hit by 64 concurrent requests (about $0.034 each) over 1,
    2, 3 replicas ends within one request's cost of it with Redis, whatever the number.

    ``max_tokens=30`` while the mock answers 20 tokens: the router's estimate (11 + 30
    tokens) covers the real cost (14 + 20), so what is left is the replicas' doing, not the
    estimate's error (an estimate below the real cost lets any replica overshoot by that
    error times the requests in flight, with or without Redis)."""
    system = chaos_system
    metering = system.url("metering") + "/api/v1"
    overshoot: dict[str, list[str]] = {"shared": [], "local": []}
    for mode, urls in replicas.items():
        for n in (1, 2, 3):
            user = f"budget-{mode}-{n}"
            key = tenant(system, user, urls[:n], {}, monthly_budget_usd=str(BUDGET))
            codes = asyncio.run(burst(urls[:n], key, 64, 64, model="pricey", max_tokens=30))
            served = codes.count(200)
            assert set(codes) <= {200, 429} and served, codes

            async def metered(user: str = user, served: int = served) -> bool:
                async with aiohttp.ClientSession() as s, s.get(
                    f"{metering}/usage", params={"user_id": user, "outcome": "success"},
                    headers=system.admin,
                ) as r:  # fmt: skip
                    return bool((await r.json())["total"] == served)

            asyncio.run(poll(metered, 60, f"{served} usage rows of {user}", system.diagnostics))
            state = httpx.get(f"{metering}/credits/{user}", headers=system.admin).json()
            spent = Decimal(str(state["spent_usd"]))
            per_request = spent / served
            overshoot[mode].append(f"{served}req/${spent - BUDGET:+.3f}")
            if mode == "shared":
                assert spent <= BUDGET + per_request, (n, served, spent)
                assert spent >= BUDGET / 2, (n, served, spent)  # the budget was usable
    report("$0.50 budget, 64 concurrent requests over 1/2/3 replicas", **overshoot)


async def test_redis_stopped_and_started_under_load(
    chaos_system: ChaosSystem, replicas: dict[str, list[str]], redis_server: RedisServer
) -> None:
    """Redis stopped under load: no request fails, the replicas count the fallback; started
    again: they go back to it by themselves."""
    system = chaos_system
    urls = replicas["shared"]
    # a generous tier limit, so every request goes through the store
    api = system.url("config-api") + "/api/v1"
    async with httpx.AsyncClient(headers=system.admin, timeout=15) as c:
        r = await c.patch(f"{api}/keys/{system.key_id}", json={"rpm_limit": 1_000_000})
        assert r.status_code == 200, r.text
    await asyncio.sleep(2)
    loads = [Load(url, system.key, concurrency=4).start() for url in urls]
    await asyncio.gather(*(load.until(50) for load in loads))
    redis_server.stop()
    stopped_at = [load.done for load in loads]
    await asyncio.gather(*(ld.until(at + 100) for ld, at in zip(loads, stopped_at, strict=True)))
    down = [await metric(u, "turnout_router_shared_limits_up") for u in urls]
    fallbacks = [await metric(u, "turnout_router_shared_limits_fallback_total") for u in urls]
    redis_server.start()

    async def all_up() -> bool:
        return all([await metric(u, "turnout_router_shared_limits_up") == 1 for u in urls])

    await poll(all_up, 30, "every replica back on Redis", system.diagnostics)
    after = [await metric(u, "turnout_router_shared_limits_fallback_total") for u in urls]
    restarted_at = [load.done for load in loads]
    await asyncio.gather(*(ld.until(at + 50) for ld, at in zip(loads, restarted_at, strict=True)))
    for load in loads:
        load.stop()
    await asyncio.gather(*(load.wait() for load in loads))
    again = [await metric(u, "turnout_router_shared_limits_fallback_total") for u in urls]

    assert all(not load.errors for load in loads), [load.errors[:3] for load in loads]
    assert down == [0, 0, 0]
    assert all(f > 0 for f in fallbacks), fallbacks
    assert again == after  # nothing fell back once the store answered again
    report(
        "Redis stopped and started under load (3 replicas)",
        served=sum(len(load.ok) for load in loads),
        errors=sum(len(load.errors) for load in loads),
        fallbacks_while_down=[int(f) for f in after],
    )


async def test_least_busy_sends_new_work_away_from_a_busy_upstream(
    chaos_system: ChaosSystem,
) -> None:
    """Two GPU boxes serve ``pool`` with ``least_busy``: while one holds six requests open
    (``gpu-a``, through a name only it serves), every new ``pool`` request goes to the other
    (services/router/tests/test_load_routing.py shows ``weighted`` does not)."""
    system = chaos_system
    system.add_upstream("gpu-a", delay_ms=5)
    system.add_upstream("gpu-b", delay_ms=5)
    system.configure([("gpu-a", 0), ("gpu-b", 0)])  # chaos-chat on both
    api = system.url("config-api") + "/api/v1"
    async with httpx.AsyncClient(headers=system.admin, timeout=15) as c:
        for box in ("gpu-a", "gpu-b"):
            r = await c.post(f"{api}/models", json={
                "provider": box, "upstream_model": "mock-pool", "name": "pool",
                "routing_strategy": "least_busy",
            })  # fmt: skip
            assert r.status_code == 201, r.text
        r = await c.post(f"{api}/models", json={
            "provider": "gpu-a", "upstream_model": "mock-held", "name": "held-on-a",
        })  # fmt: skip
        assert r.status_code == 201, r.text
    router = system.url("router")
    headers = {"Authorization": f"Bearer {system.key}"}

    async def chat(s: aiohttp.ClientSession, model: str, delay_ms: int = 0) -> str:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 2, "mock_delay_ms": delay_ms}  # fmt: skip
        async with s.post(router + "/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200, await r.text()
            return r.headers["x-turnout-provider"]

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:

        async def known() -> bool:
            try:
                return await chat(s, "pool") in ("gpu-a", "gpu-b") and bool(
                    await chat(s, "held-on-a")
                )
            except AssertionError:
                return False

        await poll(known, 30, "pool and held-on-a served", system.diagnostics)
        held = [asyncio.create_task(chat(s, "held-on-a", 8000)) for _ in range(6)]
        await asyncio.sleep(1.5)  # the six reach gpu-a (held 8 s there)
        served = [await chat(s, "pool") for _ in range(10)]
        assert await asyncio.gather(*held) == ["gpu-a"] * 6
    assert served == ["gpu-b"] * 10, served
    report("least_busy with 6 requests held on gpu-a", pool_served_by=served)
