"""Exactly-once effects: duplicates and redeliveries change nothing; sums are exact."""

from __future__ import annotations

import asyncio
import os
import random
import time
from decimal import Decimal

from turnout_common.broker import Producer
from turnout_common.events import BillingEvent
from turnout_common.testing.waiting import wait_until
from turnout_metering.runtime import Runtime
from turnout_metering.usage.consumer import UsageConsumer

from .conftest import usage

USERS = ["alice", "bob", "carol", "dave"]


async def count_rows(rt: Runtime) -> int:
    async with rt.pool.acquire() as conn:
        n: int = await conn.fetchval("SELECT count(*) FROM usage_log")
        return n


async def test_duplicate_batches_change_nothing(runtime: Runtime) -> None:
    events = [usage(f"r{i}", cost="0.000000123") for i in range(50)]
    batch = events + events[:10]  # duplicates inside the batch
    ingestor = runtime.ingestor()
    first = await ingestor.ingest(batch)
    again = await ingestor.ingest(events)  # a full redelivery
    assert len(first.inserted) == 50 and again.inserted == []
    async with runtime.pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM usage_log")
        spent = await conn.fetchval(
            "SELECT spent_usd FROM spend WHERE subject_type = 'user' AND subject_id = 'alice'"
        )
        rollup = await conn.fetchrow("SELECT sum(requests), sum(cost_usd) FROM usage_daily")
        billing = await conn.fetch(
            "SELECT payload FROM outbox WHERE topic = $1", runtime.settings.billing_topic
        )
    assert rows == 50
    assert spent == Decimal("0.00000615")
    assert rollup[0] == 50 and rollup[1] == Decimal("0.00000615")
    ids = {BillingEvent.model_validate_json(r["payload"]).id for r in billing}
    assert len(billing) == 50 and ids == {f"r{i}" for i in range(50)}


async def test_ten_thousand_records_with_duplicates_and_redelivery(runtime: Runtime) -> None:
    rng = random.Random(7)
    distinct = [
        usage(
            f"req-{i:05d}",
            user_id=(user := rng.choice(USERS)),
            key_id=f"k-{user}",
            cost=f"{rng.randint(0, 5_000_000) / 1e9:.9f}",
            input_tokens=rng.randint(0, 4000),
            output_tokens=rng.randint(0, 1000),
            latency_ms=rng.uniform(5, 3000),
            source=rng.choice(["api", "api", "lab"]),
        )
        for i in range(10_000)
    ]
    duplicates = rng.sample(distinct, 1_000)
    stream = distinct + duplicates
    rng.shuffle(stream)
    topic = runtime.settings.usage_topic
    producer = Producer(runtime.settings.kafka)
    await producer.start()
    try:
        await producer.send_many((topic, e.request_id.encode(), e.to_bytes(), ()) for e in stream)
    finally:
        await producer.stop()

    # 1. a consumer writes a few batches to the DB and dies before acking any offset
    crashed = UsageConsumer(runtime.settings, runtime.ingestor())
    await crashed.open()  # joined, no background task: polled by hand
    written = 0
    async with asyncio.timeout(30):
        while written < 2_500:
            batch = await crashed.poll()
            if batch:
                written += (await crashed.handle(batch)).received
    await crashed.stop()  # no commit: everything is delivered again
    assert await count_rows(runtime) > 0

    # 2. the service consumer is killed mid-stream (cancelled wherever it is)
    consumer = await runtime.start_consumer()
    await wait_until(lambda: _at_least(runtime, 6_000))
    await consumer.stop()

    # 3. a fresh consumer finishes the stream
    started = time.perf_counter()
    before = await count_rows(runtime)
    consumer = await runtime.start_consumer()
    await wait_until(lambda: _at_least(runtime, 10_000), timeout=60)
    elapsed = time.perf_counter() - started
    await wait_until(lambda: consumer.batches > 0 and consumer.lag() == 0)
    await consumer.stop()
    print(f"\ningest: {10_000 - before} new records in {elapsed:.2f}s (incl. group join)")

    async with runtime.pool.acquire() as conn:
        log = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT request_id), sum(input_tokens),"
            " sum(output_tokens), sum(cost_usd) FROM usage_log"
        )
        rollup = await conn.fetchrow(
            "SELECT sum(requests), sum(input_tokens), sum(output_tokens), sum(cost_usd)"
            " FROM usage_daily"
        )
        spend = await conn.fetch(
            "SELECT subject_id, sum(spent_usd) AS s, sum(requests) AS n FROM spend"
            " WHERE subject_type = 'user' GROUP BY 1"
        )
        billing = await conn.fetchval(
            "SELECT count(DISTINCT key) FROM outbox WHERE topic = $1",
            runtime.settings.billing_topic,
        )
        billing_rows = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1", runtime.settings.billing_topic
        )
    want_cost = sum((e.cost_usd for e in distinct), Decimal(0))
    want_in = sum(e.input_tokens for e in distinct)
    want_out = sum(e.output_tokens for e in distinct)
    assert tuple(log) == (10_000, 10_000, want_in, want_out, want_cost)
    assert tuple(rollup) == (10_000, want_in, want_out, want_cost)
    per_user = {u: sum((e.cost_usd for e in distinct if e.user_id == u), Decimal(0)) for u in USERS}
    assert {r["subject_id"]: r["s"] for r in spend} == per_user
    assert sum(r["n"] for r in spend) == 10_000
    assert billing == billing_rows == 10_000


async def _at_least(rt: Runtime, n: int) -> bool:
    return await count_rows(rt) >= n


async def test_invalid_records_are_skipped_not_blocking(runtime: Runtime) -> None:
    good = [usage(f"ok-{i}", cost="0.25") for i in range(3)]
    bad = [
        b"not json",
        b'{"request_id": "neg", "input_tokens": -5}',
        b'{"request_id": "huge", "output_tokens": 99999999999999999999999}',
        b'{"request_id": "", "cost_usd": "1"}',
        b'{"request_id": "nan", "cost_usd": "NaN"}',
        # random text too long for an index row: it would fail every batch it is in
        b'{"request_id": "long-source", "source": "' + os.urandom(3000).hex().encode() + b'"}',
        b'{"request_id": "long-user", "user_id": "' + os.urandom(3000).hex().encode() + b'"}',
    ]
    topic = runtime.settings.usage_topic
    producer = Producer(runtime.settings.kafka)
    await producer.start()
    try:
        await producer.send_many(
            [(topic, b"k", raw, ()) for raw in bad]
            + [(topic, e.request_id.encode(), e.to_bytes(), ()) for e in good]
        )
    finally:
        await producer.stop()
    consumer = await runtime.start_consumer()
    await wait_until(lambda: _at_least(runtime, 3))
    await wait_until(lambda: consumer.batches > 0 and consumer.lag() == 0)
    async with runtime.pool.acquire() as conn:
        ids = {r[0] for r in await conn.fetch("SELECT request_id FROM usage_log")}
        spent = await conn.fetchval("SELECT sum(spent_usd) FROM spend WHERE subject_type = 'user'")
    assert ids == {"ok-0", "ok-1", "ok-2"} and spent == Decimal("0.75")


async def test_the_client_api_is_kept(runtime: Runtime) -> None:
    """``api`` (issue 18: /v1/messages, /v1/responses) is stored and listed; older records
    without it read as None."""
    from turnout_metering.usage.queries import UsageFilter, list_usage

    events = [usage("r-msg", api="messages"), usage("r-resp", api="responses"), usage("r-old")]
    await runtime.ingestor().ingest(events)
    async with runtime.pool.acquire() as conn:
        rows, _ = await list_usage(conn, UsageFilter(), None, None, 10, 0)
    assert {r["request_id"]: r["api"] for r in rows} == {
        "r-msg": "messages",
        "r-resp": "responses",
        "r-old": None,
    }
