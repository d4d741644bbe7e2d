"""Measure sustained ingest (records/s): usage topic -> consumer -> DB commit -> ack.

Run by hand (not in CI): ``uv run python services/metering/bench/bench_ingest.py [N] [BATCH]``.
Starts its own Tansu broker and a scratch database on the local PostgreSQL server; the
snapshot comes from a tiny local server. Prints records/s for the consume+commit path
(timed from the first committed batch, so the consumer-group join is excluded).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from decimal import Decimal

import asyncpg
from aiohttp import web

from turnout_common.broker import Producer, ensure_topics
from turnout_common.devinfra import TansuBroker
from turnout_common.events import UsageEvent
from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_common.topics import USAGE, Topic
from turnout_metering.runtime import Runtime
from turnout_metering.settings import MeteringSettings

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


async def snapshot(_: web.Request) -> web.Response:
    return web.json_response({"revision": 0, "entities": []})


async def main(n: int, batch: int) -> None:
    broker = TansuBroker()
    broker.start()
    db = f"metering_bench_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(SERVER)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    app = web.Application()
    app.router.add_get("/api/v1/snapshot", snapshot)
    srv = LocalServer(app).start()
    kafka = KafkaSettings(
        bootstrap=broker.bootstrap, session_timeout_ms=2000, heartbeat_interval_ms=500,
        fetch_max_wait_ms=20, linger_ms=5,
    )  # fmt: skip
    settings = MeteringSettings(
        database_url=SERVER.rsplit("/", 1)[0] + "/" + db, admin_token="bench-admin-token",  # noqa: S106
        config_url=srv.url, metering_batch_max=batch, kafka=kafka,
    )  # fmt: skip
    rt = Runtime(settings)
    try:
        await ensure_topics(kafka, [Topic(USAGE.name, USAGE.partitions, False, "")])
        rng = random.Random(1)
        producer = Producer(kafka)
        await producer.start()
        t0 = time.perf_counter()
        events = [
            UsageEvent(
                request_id=uuid.uuid4().hex,
                user_id=f"u{(k := rng.randint(1, 1000)) % 500}",
                key_id=f"k{k}",
                model=rng.choice(["a", "b", "c"]),
                provider="p",
                input_tokens=rng.randint(1, 4000),
                output_tokens=rng.randint(1, 900),
                cost_usd=Decimal(rng.randint(0, 10**7)) / Decimal(10**9),
                latency_ms=rng.uniform(5, 5000),
            )
            for _ in range(n)
        ]
        await producer.send_many(
            (USAGE.name, e.request_id.encode(), e.to_bytes(), ()) for e in events
        )
        await producer.stop()
        print(f"produced {n} records in {time.perf_counter() - t0:.1f}s")
        await rt.start()
        assert rt.consumer is not None
        first: float | None = None
        first_rows = 0
        while True:
            async with rt.pool.acquire() as c:
                rows = await c.fetchval("SELECT count(*) FROM usage_log")
            if first is None and rows:
                first, first_rows = time.perf_counter(), rows
            if rows >= n:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - (first or 0)
        done = n - first_rows
        print(f"batch={batch}: {done} records in {elapsed:.2f}s = {done / elapsed:,.0f} records/s")
        assert rt.relay is not None
        t1 = time.perf_counter()
        await rt.relay.drain()
        print(f"outbox drained (billing + credit events) {time.perf_counter() - t1:.1f}s later")
    finally:
        await rt.stop()
        srv.stop()
        broker.stop()
        conn = await asyncpg.connect(SERVER)
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 2000))  # fmt: skip
