#!/usr/bin/env python3
"""Metering ingest benchmark: produce a burst of usage records, time how fast they drain.

Produces ``--n`` (default 100,000) valid ``UsageEvent`` records (key ``request_id``) to
``turnout.usage.v1`` as fast as the broker takes them, then polls a *running* metering
service until it has absorbed all of them. How "absorbed" is measured (pick one):

  --group GROUP_ID        consumer-group lag: committed offsets == end offsets (any consumer)
  --db DSN [--count-sql]  rows in metering's table (default: metering.usage_log)
  --metrics-url URL --metric NAME   a Prometheus counter on metering's /metrics

``--duplicates F`` re-sends a fraction F of the records (same request_id, new event_id):
an idempotent metering still ends at exactly N rows. Prints a human summary and one
``INGEST {json}`` line. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from turnout_common.events import UsageEvent
from turnout_common.topics import USAGE

MODELS = ("bench-fast", "bench-slow", "gpt-4o-mini", "llama-8b")


def make_records(n: int, duplicates: float = 0.0, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: n distinct request ids, plus ``duplicates * n`` redeliveries."""
    rnd = random.Random(seed)
    out: list[tuple[bytes, bytes]] = []
    for _ in range(n):
        rid = uuid.uuid4().hex
        inp, outp = rnd.randint(10, 2000), rnd.randint(1, 800)
        ev = UsageEvent(
            request_id=rid,
            user_id=f"user-{rnd.randint(1, 50)}",
            key_id=f"key-{rnd.randint(1, 200)}",
            requested_model=rnd.choice(MODELS),
            model="bench-fast",
            upstream_model="gpt-4o-mini",
            provider_id="bench-fast-mock",
            provider="bench-fast-mock",
            deployment_id="bench-fast-deployment",
            input_tokens=inp,
            output_tokens=outp,
            cost_usd=(Decimal(inp) * Decimal("0.15") + Decimal(outp) * Decimal("0.60"))
            / Decimal(1_000_000),
            latency_ms=round(rnd.uniform(5, 500), 2),
            source="bench",
        )
        out.append((rid.encode(), ev.to_bytes()))
    for key, value in rnd.sample(out, int(n * duplicates)):
        dup = UsageEvent.model_validate_json(value).model_copy(update={"event_id": uuid.uuid4()})
        out.append((key, dup.to_bytes()))
    return out


async def produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]
) -> tuple[float, dict[TopicPartition, int]]:
    """Send every record (acks=all): (seconds until the last ack, next offset per partition).

    The next offsets come from the acknowledgements, not from the broker's end offsets:
    Tansu 0.6.0 reports an end offset of *last batch's base offset + 1*.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024, enable_idempotence=False)  # fmt: skip
    await producer.start()
    try:
        t0 = time.perf_counter()
        futures = [await producer.send(topic, v, key=k) for k, v in records]
        acks = await asyncio.gather(*futures)
        elapsed = time.perf_counter() - t0
    finally:
        await producer.stop()
    ends: dict[TopicPartition, int] = {}
    for md in acks:
        tp = TopicPartition(md.topic, md.partition)
        ends[tp] = max(ends.get(tp, 0), md.offset + 1)
    return elapsed, ends


Probe = Callable[[], Awaitable[int]]
"""Returns the work still outstanding (lag), 0 when metering has caught up."""


def group_lag_probe(bootstrap: str, group: str, ends: dict[TopicPartition, int]) -> Probe:
    """Lag of ``group`` against the offsets just produced (committed = next offset to read)."""

    async def probe() -> int:
        # A consumer that never subscribes: committed() is an OffsetFetch, no group join.
        # (aiokafka's admin list_consumer_group_offsets cannot parse Tansu's reply.)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                    enable_auto_commit=False)  # fmt: skip
        await consumer.start()
        try:
            done = {tp: await consumer.committed(tp) for tp in ends}
        finally:
            await consumer.stop()
        return sum(max(0, end - (done[tp] or 0)) for tp, end in ends.items())

    return probe


def count_probe(count: Callable[[], Awaitable[int]], expected: int) -> Probe:
    async def probe() -> int:
        return max(0, expected - await count())

    return probe


def sql_counter(dsn: str, sql: str) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return count


def parse_metric(text: str, name: str) -> float:
    """Sum of the samples of ``name`` in a Prometheus text exposition.

    ``name`` alone sums every label set; ``name{k="v"}`` keeps samples carrying those labels.
    """
    base, _, want = name.partition("{")
    wanted = [w.strip() for w in want.rstrip("}").split(",") if w.strip()]
    pattern = re.compile(rf"^{re.escape(base)}(?:\{{([^}}]*)\}})?\s+([0-9.eE+-]+)", re.MULTILINE)
    total = 0.0
    for labels, value in pattern.findall(text):
        have = {part.strip() for part in labels.split(",")}
        if all(w in have for w in wanted):
            total += float(value)
    return total


def metrics_counter(url: str, name: str) -> Callable[[], Awaitable[int]]:
    def fetch() -> int:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(parse_metric(resp.read().decode(), name))

    async def count() -> int:
        return await asyncio.to_thread(fetch)

    return count


async def drain(probe: Probe, timeout: float, interval: float = 0.2) -> tuple[float, int, bool]:
    """Poll until the probe reports 0; (seconds, max lag seen, caught up?)."""
    t0 = time.perf_counter()
    max_lag = 0
    while time.perf_counter() - t0 < timeout:
        lag = await probe()
        max_lag = max(max_lag, lag)
        if lag == 0:
            return time.perf_counter() - t0, max_lag, True
        await asyncio.sleep(interval)
    return time.perf_counter() - t0, max_lag, False


async def run(args: argparse.Namespace) -> dict[str, object]:
    records = make_records(args.n, args.duplicates)
    counter = None
    if args.db:
        counter = sql_counter(args.db, args.count_sql)
    elif args.metrics_url:
        counter = metrics_counter(args.metrics_url, args.metric)
    expected = await counter() + args.n if counter else 0
    t0 = time.perf_counter()
    produce_s, ends = await produce(args.bootstrap, args.topic, records)
    result: dict[str, object] = {
        "n": args.n,
        "sent": len(records),
        "produce_s": round(produce_s, 2),
        "produce_rps": round(len(records) / produce_s),
    }
    probe = None
    if args.group:
        probe = group_lag_probe(args.bootstrap, args.group, ends)
    elif counter is not None:
        probe = count_probe(counter, expected)
    if probe is not None:
        _, max_lag, ok = await drain(probe, args.timeout)
        total = time.perf_counter() - t0
        result.update(caught_up=ok, drain_s=round(total, 2), max_lag=max_lag,
                      ingest_rps=round(args.n / total) if ok else None)  # fmt: skip
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default=USAGE.name)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--duplicates", type=float, default=0.0)
    ap.add_argument("--group", help="metering's consumer group id (lag mode)")
    ap.add_argument("--db", help="metering's PostgreSQL DSN (row-count mode)")
    ap.add_argument("--count-sql", default="SELECT count(*) FROM metering.usage_log")
    ap.add_argument("--metrics-url", help="metering's /metrics URL (counter mode)")
    ap.add_argument("--metric", default='turnout_metering_usage_records_total{result="inserted"}')
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    if not (args.group or args.db or args.metrics_url):
        print("note: no --group/--db/--metrics-url given: producing only", file=sys.stderr)
    res = asyncio.run(run(args))
    print(f"produced {res['sent']:,} records in {res['produce_s']} s ({res['produce_rps']:,}/s)")
    if "caught_up" in res:
        state = "caught up" if res["caught_up"] else f"NOT caught up after {args.timeout:.0f} s"
        print(f"metering {state}: {res['drain_s']} s from first record, max lag "
              f"{res['max_lag']:,}, ingest {res['ingest_rps'] or '-'} records/s")  # fmt: skip
    print("INGEST " + json.dumps(res))
    return 0 if res.get("caught_up", True) else 1


if __name__ == "__main__":
    sys.exit(main())
