"""Rate limits and budget reservations shared by two router replicas through a real Redis;
fail-open to each replica's own limits while it is down, and back when it returns."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from turnout_common.crypto import hash_virtual_key
from turnout_common.devinfra import free_port
from turnout_common.events import CreditEvent
from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_common.topics import CREDIT
from turnout_router.app import RouterApp

from .conftest import RunningRouter, router_settings
from .test_access import MSG, new_key, until

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the machine's Redis; its keys are deleted after."""
    p = f"test-{uuid.uuid4().hex[:12]}:"
    yield p
    r = Redis.from_url(REDIS_URL)
    keys = [k async for k in r.scan_iter(match=p + "*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


async def start_router(
    kafka: KafkaSettings, config: LocalServer, state: Path, **kw: Any
) -> RunningRouter:
    settings = router_settings(kafka, config.url, state, **kw)
    return await RunningRouter(RouterApp(settings), free_port()).start()


@pytest.fixture
async def replicas(
    kafka_settings: KafkaSettings,
    config_server: LocalServer,
    tmp_path_factory: pytest.TempPathFactory,
    prefix: str,
) -> AsyncIterator[list[RunningRouter]]:
    routers = [
        await start_router(
            kafka_settings,
            config_server,
            tmp_path_factory.mktemp("replica"),
            redis_url=REDIS_URL,
            redis_prefix=prefix,
        )
        for _ in range(2)
    ]
    yield routers
    for r in routers:
        await r.stop()


async def post(router: RunningRouter, key: str, **body: Any) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            router.url + "/v1/chat/completions",
            json={"model": "primary", "messages": MSG, **body},
            headers={"Authorization": f"Bearer {key}"},
        ) as r,
    ):
        return r.status, await r.json(), r.headers


async def shared_key(world: Any, replicas: list[RunningRouter], unique: str, **kw: Any) -> str:
    key = await new_key(world, replicas[0], unique, **kw)
    for r in replicas[1:]:
        await until(lambda r=r: hash_virtual_key(key) in r.app.state.index.keys_by_hash)
    return key


async def test_rpm_limit_holds_across_replicas(
    replicas: list[RunningRouter], world: Any, unique: str
) -> None:
    """6 rpm, 12 requests alternating over two replicas: 6 pass, not 12 (per replica: 6 each)."""
    key = await shared_key(world, replicas, unique, rpm_limit=6)
    t0 = time.monotonic()
    results = [await post(replicas[i % 2], key) for i in range(12)]
    refill = int((time.monotonic() - t0) / 10)  # 6 rpm refills one request per 10 s
    ok = [r for r in results if r[0] == 200]
    assert 6 <= len(ok) <= 6 + refill, [r[0] for r in results]
    assert {r[0] for r in results} == {200, 429}
    refused = [r for r in results if r[0] == 429]
    assert {r[1]["error"]["code"] for r in refused} == {"rate_limit_exceeded"}
    assert "key's rate limit of 6 requests per minute" in refused[0][1]["error"]["message"]
    # both replicas served, and the headers count the shared bucket down across them
    assert len({r[2]["x-request-id"] for r in ok}) == len(ok)
    remaining = [int(r[2]["x-ratelimit-remaining-requests"]) for r in ok[:6]]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] <= 1 + refill
    assert all(r[2]["x-ratelimit-limit-requests"] == "6" for r in ok)


async def test_tier_tpm_limit_holds_across_replicas(
    replicas: list[RunningRouter], world: Any, unique: str, fakes: Any
) -> None:
    """A tier's 1000 tokens per minute over two replicas: 413 past the limit itself; each
    request takes ~300 tokens by estimate and settles to the 200 it used, so about four
    pass in all (per replica, four on each would)."""
    fakes["one"][0].behaviour.reply = "tok " * 195  # 5 prompt + 195 completion tokens
    tier = f"tier-{unique}"
    user = f"u-{unique}"
    await world.put(
        "tier",
        tier,
        {
            "name": tier,
            "rank": 1,
            "monthly_credits_usd": "0",
            "rpm_limit": None,
            "tpm_limit": 1000,
        },
    )
    await world.put(
        "user", user, {"id": user, "tier": tier, "monthly_budget_usd": None, "enabled": True}
    )
    key = await shared_key(world, replicas, unique, user=user)
    code, body, _ = await post(replicas[0], key, max_tokens=2000)
    assert (code, body["error"]["code"]) == (413, "request_too_large")
    codes = [(await post(replicas[i % 2], key, max_tokens=300))[0] for i in range(10)]
    assert 3 <= codes.count(200) <= 5 and codes[-1] == 429, codes


async def test_budget_reservations_hold_across_replicas(
    replicas: list[RunningRouter], world: Any, unique: str, producer: Any, fakes: Any
) -> None:
    """$0.0000011 left covers one in-flight estimate of $0.0000007, not two: one request of
    six concurrent ones over two replicas passes (per replica, one on each would)."""
    key = await shared_key(world, replicas, unique)
    ev = CreditEvent(
        subject_type="key",
        subject_id=f"k-{unique}",
        period="2026-11",
        remaining_usd="0.0000011",
        seq=1,
    )
    await producer.send(CREDIT.name, ev.to_bytes(), key=ev.key.encode())
    for r in replicas:
        await until(lambda r=r: f"key:k-{unique}" in r.app.state.credits)
    fakes["one"][0].behaviour.delay_s = 0.3
    results = await asyncio.gather(*(post(replicas[i % 2], key, max_tokens=2) for i in range(6)))
    codes = [r[0] for r in results]
    assert codes.count(200) == 1, codes
    assert {r[1]["error"]["code"] for r in results if r[0] == 429} == {"insufficient_quota"}
    # the reservation is released when the request is settled: the store holds none after
    store = replicas[0].app.limiter.shared
    assert store is not None
    held = store.key("alice", f"key:k-{unique}:held")
    await until(lambda: not store._pending, timeout=5)
    r = Redis.from_url(REDIS_URL)
    try:
        for _ in range(100):
            if await r.zcard(held) == 0:
                break
            await asyncio.sleep(0.05)
        assert await r.zcard(held) == 0
    finally:
        await r.aclose()


# --- the store going away and coming back ---------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A redis-server of this test's own (so the test can stop and start it)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    ctl: dict[str, Any] = {"port": port, "proc": None}

    def start() -> None:
        ctl["proc"] = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop() -> None:
        proc = ctl["proc"]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    ctl["start"], ctl["stop"] = start, stop
    start()
    yield ctl
    stop()


def metric(router: RunningRouter, body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics of {router.url}")


async def metrics(router: RunningRouter) -> str:
    async with aiohttp.ClientSession() as s, s.get(router.url + "/metrics") as r:
        return await r.text()


async def test_store_down_fails_open_then_recovers(
    kafka_settings: KafkaSettings,
    config_server: LocalServer,
    tmp_path_factory: pytest.TempPathFactory,
    private_redis: dict[str, Any],
    world: Any,
    unique: str,
) -> None:
    url = f"redis://127.0.0.1:{private_redis['port']}/0"
    router = await start_router(
        kafka_settings,
        config_server,
        tmp_path_factory.mktemp("failopen"),
        redis_url=url,
        redis_prefix="t:",
        redis_retry_s=0.1,
    )
    try:
        key = await new_key(world, router, unique, rpm_limit=1000)
        assert (await post(router, key))[0] == 200
        body = await metrics(router)
        assert metric(router, body, "turnout_router_shared_limits_up") == 1
        assert metric(router, body, "turnout_router_shared_limits_fallback_total") == 0

        private_redis["stop"]()
        # served all the same, on this replica's own limits, and counted
        codes = [(await post(router, key))[0] for _ in range(5)]
        assert codes == [200] * 5
        body = await metrics(router)
        assert metric(router, body, "turnout_router_shared_limits_up") == 0
        assert metric(router, body, "turnout_router_shared_limits_fallback_total") >= 4

        private_redis["start"]()
        store = router.app.limiter.shared
        assert store is not None
        await until(lambda: store.up, timeout=10)
        before = store.fallbacks
        assert (await post(router, key))[0] == 200
        assert store.fallbacks == before  # taken in the store again
        r = Redis.from_url(url)
        try:
            assert await r.exists(store.key("alice", f"key:k-{unique}:rpm")) == 1
        finally:
            await r.aclose()
    finally:
        await router.stop()


async def test_tokens_settle_with_the_reservation_in_one_script(
    replicas: list[RunningRouter], world: Any, unique: str
) -> None:
    """A key with a tpm limit whose user has a budget: the request's real tokens are settled
    and its reservation released by one SETTLE; the other replica then sees the bucket with
    the real tokens taken (not the 2,000-token estimate)."""
    user = f"u-{unique}"
    await world.put(
        "user", user, {"id": user, "tier": "starter", "monthly_budget_usd": "5", "enabled": True}
    )
    key = await shared_key(world, replicas, unique, user=user, tpm_limit=100_000)
    code, _, h1 = await post(replicas[0], key, max_tokens=2000)
    assert code == 200
    store = replicas[0].app.limiter.shared
    assert store is not None
    r = Redis.from_url(REDIS_URL)
    try:
        held = store.key(user, f"user:{user}:held")
        for _ in range(100):
            if await r.zcard(held) == 0 and not store._pending:
                break
            await asyncio.sleep(0.05)
        assert await r.zcard(held) == 0  # released
    finally:
        await r.aclose()
    code, _, h2 = await post(replicas[1], key, max_tokens=2000)
    assert code == 200
    first = 100_000 - int(h1["x-ratelimit-remaining-tokens"])  # ~2,005: the estimate
    left = int(h2["x-ratelimit-remaining-tokens"])
    # without the settlement: 100,000 - 2 x ~2,005; with it, the first counts ~15 real tokens
    assert first > 2000 and left > 100_000 - first - 100, (first, left)
