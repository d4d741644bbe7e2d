"""Usage at scale (issue 20 item 4): N generated usage rows in real PostgreSQL, then the read
paths people use and metering's write path, timed against that table.

    uv run python bench/usage_scale.py --rows 10000000          # ~10 M rows over 90 days
    uv run python bench/usage_scale.py --rows 1000000 --keep    # keep the database afterwards

Loads the rows with COPY (text format, generated here: 2,000 users with 2 keys each, each
mostly on one of 12 models, 4 providers, 90 days ending now in time order, 2 % errors, 10 %
lab traffic) into a scratch database
migrated like metering's, builds the daily rollup from them (the aggregate of migration
0002), VACUUM ANALYZE, then measures (p50 / p95 / max over --runs runs each):

* usage list page (``GET /api/v1/usage``'s query: rows + count): one user, and the admin's
  first page over the last 30 days;
* 30-day summary (``GET /api/v1/usage/summary``'s query, from the rollup): all users by model,
  and one user;
* CSV export (``format=csv``): a user's 30 days, and the admin's 100,000-row maximum;
* metering ingest into that table: --ingest records in batches of 5,000 through metering's
  own write path (usage_log, rollup, spend, billing outbox, credit state; no broker), and the
  same into an empty schema for the ratio.

Prints a Markdown report (the figures, the command, the machine) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from turnout_common.db import create_pool
from turnout_common.events import UsageEvent
from turnout_common.migrations import migrate
from turnout_metering.api.usage import to_csv
from turnout_metering.clock import SystemClock
from turnout_metering.config_state import ConfigState
from turnout_metering.credits.service import CreditService
from turnout_metering.migrations import migrations
from turnout_metering.schemas import UsageRecord
from turnout_metering.usage import queries
from turnout_metering.usage.partitions import Partitions
from turnout_metering.usage.queries import UsageFilter
from turnout_metering.usage.service import Ingestor

SERVER = os.environ.get("TURNOUT_BENCH_DATABASE", "postgresql://postgres@127.0.0.1:5432/postgres")
SCHEMA = "metering"
USERS, KEYS_PER_USER, DAYS = 2000, 2, 90
MODELS = [f"model-{i}" for i in range(12)]
PROVIDERS = [("p-a", "alpha"), ("p-b", "beta"), ("p-c", "gamma"), ("p-d", "delta")]
COPY_COLUMNS = (
    "request_id", "event_id", "started_at", "period", "user_id", "key_id", "purpose", "model",
    "upstream_model", "provider_id", "provider", "input_tokens", "output_tokens",
    "cached_tokens", "cost_usd", "latency_ms", "status", "outcome", "source", "api",
)  # fmt: skip
ROLLUP = """
INSERT INTO usage_daily (day, user_id, key_id, model, provider_id, provider, source, outcome,
                         requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd,
                         billed_usd, latency_sum_ms, lat_hist)
SELECT (started_at AT TIME ZONE 'UTC')::date, coalesce(user_id, ''), coalesce(key_id, ''),
       coalesce(model, ''), coalesce(provider_id, ''), coalesce(provider, ''), source, outcome,
       count(*), count(*) FILTER (WHERE outcome <> 'success'), sum(input_tokens),
       sum(output_tokens), sum(cached_tokens), sum(cost_usd),
       sum(coalesce(billed_usd, cost_usd)), sum(latency_ms),
       array_fill(0::bigint, ARRAY[25])
FROM usage_log GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""
ROLLUP_MODELS = """
INSERT INTO usage_daily_models (day, model, provider_id, provider, source, outcome, requests,
                                errors, input_tokens, output_tokens, cached_tokens, cost_usd,
                                billed_usd, latency_sum_ms, lat_hist)
SELECT day, model, provider_id, provider, source, outcome, sum(requests), sum(errors),
       sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost_usd),
       sum(billed_usd), sum(latency_sum_ms), array_fill(0::bigint, ARRAY[25])
FROM usage_daily GROUP BY 1, 2, 3, 4, 5, 6
"""


def chunks(n: int, size: int = 50_000) -> list[tuple[int, int]]:
    return [(i, min(size, n - i)) for i in range(0, n, size)]


def rows_text(start: int, count: int, total: int, end: datetime, rng: random.Random) -> bytes:
    """``count`` rows in COPY text format (tab-separated, \\N for NULL)."""
    span = DAYS * 86400
    base = end.timestamp() - span
    out: list[str] = []
    for i in range(start, start + count):
        user = rng.randrange(USERS)
        # in time order, as traffic arrives: row i of n at i/n of the 90 days
        moment = datetime.fromtimestamp(base + span * (i + rng.random()) / total, UTC)
        # a user mostly uses its own model (each model is served by one provider)
        m = user % len(MODELS) if rng.random() < 0.8 else rng.randrange(len(MODELS))
        model = MODELS[m]
        pid, pname = PROVIDERS[m % len(PROVIDERS)]
        inp, outp = rng.randrange(1, 4000), rng.randrange(1, 900)
        error = rng.random() < 0.02
        cost = (inp * 150 + outp * 600) // 1000  # nano-USD
        out.append(
            f"r{i:09d}\t{uuid.UUID(int=rng.getrandbits(128), version=4)}\t{moment.isoformat()}"
            f"\t{moment:%Y-%m}\tu{user:05d}\tk{user:05d}-{rng.randrange(KEYS_PER_USER)}\tchat"
            f"\t{model}\t{model}-up\t{pid}\t{pname}\t{inp}\t{0 if error else outp}\t0"
            f"\t0.{0 if error else cost:09d}\t{rng.uniform(50, 4000):.3f}"
            f"\t{502 if error else 200}\t{'upstream_error' if error else 'success'}"
            f"\t{'lab' if rng.random() < 0.1 else 'api'}\tchat.completions\n"
        )
    return "".join(out).encode()


async def load(pool: asyncpg.Pool, n: int, end: datetime) -> float:
    """COPY the rows in time order (as they would have arrived), with the secondary indexes
    dropped and then built again exactly as the migration defines them (a bulk load)."""
    rng = random.Random(20)
    t0 = time.perf_counter()
    async with pool.acquire() as conn:
        await Partitions(SCHEMA, "month", 1, None).ensure_for(
            conn, [end - timedelta(days=d) for d in range(DAYS + 1)], end
        )
        indexes = await conn.fetch(
            "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS ddl"
            " FROM pg_index WHERE indrelid = 'usage_log'::regclass AND NOT indisprimary"
        )
        for ix in indexes:
            await conn.execute(f"DROP INDEX {ix['name']}")

        async def source() -> AsyncIterator[bytes]:
            for start, count in chunks(n):
                yield rows_text(start, count, n, end, rng)
                if start and start % 1_000_000 == 0:
                    rate = start / (time.perf_counter() - t0)
                    print(f"  {start:,} rows ({rate:,.0f}/s)", file=sys.stderr, flush=True)

        await conn.copy_to_table(
            "usage_log", source=source(), columns=COPY_COLUMNS, schema_name=SCHEMA
        )
        print(f"  copied in {time.perf_counter() - t0:.0f} s; indexing", file=sys.stderr)
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for ix in indexes:  # the parent's definition, for the parent and every partition
            await conn.execute(ix["ddl"].replace(" ON ONLY ", " ON "))
    return time.perf_counter() - t0


async def timed(runs: int, fn: Callable[[int], Awaitable[Any]], warm: int = 3) -> dict[str, float]:
    for i in range(warm):
        await fn(-1 - i)
    took: list[float] = []
    for i in range(runs):
        t = time.perf_counter()
        await fn(i)
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    return {
        "p50": statistics.median(took),
        "p95": took[max(0, int(len(took) * 0.95 + 0.5) - 1)],
        "max": took[-1],
    }


def event(i: int, now: datetime, rng: random.Random) -> UsageEvent:
    user = rng.randrange(USERS)
    pid, pname = PROVIDERS[rng.randrange(4)]
    return UsageEvent(
        request_id=f"ingest-{i:09d}-{uuid.uuid4().hex[:6]}",
        user_id=f"u{user:05d}",
        key_id=f"k{user:05d}-{rng.randrange(KEYS_PER_USER)}",
        model=MODELS[rng.randrange(len(MODELS))],
        provider=pname,
        provider_id=pid,
        input_tokens=rng.randrange(1, 4000),
        output_tokens=rng.randrange(1, 900),
        cost_usd=Decimal(rng.randrange(10**6)) / Decimal(10**9),
        latency_ms=rng.uniform(50, 4000),
        started_at=now - timedelta(seconds=rng.random() * 60),
    )


async def ingest_rate(pool: asyncpg.Pool, schema: str, n: int) -> float:
    clock = SystemClock()
    credits = CreditService(pool, schema, ConfigState(), clock, "bench.credit", "bench.alerts")
    ingestor = Ingestor(
        pool, schema, credits, "bench.billing", Partitions(schema, "month", 1, None)
    )
    rng = random.Random(7)
    now = clock.now()
    batches = [[event(i + j, now, rng) for j in range(5000)] for i in range(0, n, 5000)]
    await ingestor.ingest(batches[0])  # warm-up (partitions, plans)
    t0 = time.perf_counter()
    for batch in batches[1:]:
        await ingestor.ingest(batch)
    return (n - 5000) / (time.perf_counter() - t0)


async def measure(pool: asyncpg.Pool, runs: int, end: datetime) -> dict[str, dict[str, float]]:
    rng = random.Random(3)
    today = end.date()
    since = end - timedelta(days=30)
    users = [f"u{rng.randrange(USERS):05d}" for _ in range(runs + 10)]
    out: dict[str, dict[str, float]] = {}

    async def page_user(i: int) -> None:
        async with pool.acquire() as c:
            await queries.list_usage(c, UsageFilter(user_id=users[i]), None, None, 100, 0)

    async def page_admin_30d(_: int) -> None:
        async with pool.acquire() as c:
            await queries.list_usage(c, UsageFilter(), since, None, 100, 0)

    async def page_admin_deep(i: int) -> None:
        async with pool.acquire() as c:
            await queries.list_usage(c, UsageFilter(), since, None, 100, 100 * (i % 50))

    async def summary_all(_: int) -> None:
        async with pool.acquire() as c:
            await queries.summary(c, UsageFilter(), "model", today - timedelta(days=29), today)

    async def summary_user(i: int) -> None:
        async with pool.acquire() as c:
            start: date = today - timedelta(days=29)
            await queries.summary(c, UsageFilter(user_id=users[i]), "day", start, today)

    async def csv_user(i: int) -> None:
        async with pool.acquire() as c:
            rows, _ = await queries.list_usage(
                c, UsageFilter(user_id=users[i]), since, None, 100_000, 0
            )
        to_csv([UsageRecord.model_validate(dict(r)) for r in rows])

    async def csv_admin(_: int) -> None:
        async with pool.acquire() as c:
            rows, _ = await queries.list_usage(c, UsageFilter(), since, None, 100_000, 0)
        to_csv([UsageRecord.model_validate(dict(r)) for r in rows])

    out["usage page, one user (limit 100)"] = await timed(runs, page_user)
    out["usage page, admin, last 30 days (limit 100)"] = await timed(runs, page_admin_30d)
    out["usage page, admin, 30 days, offset 0..4900"] = await timed(runs, page_admin_deep)
    out["summary, 30 days, all users by model"] = await timed(runs, summary_all)
    out["summary, 30 days, one user by day"] = await timed(runs, summary_user)
    out["CSV export, one user, 30 days"] = await timed(runs, csv_user)
    out["CSV export, admin, 100,000 rows"] = await timed(max(3, runs // 10), csv_admin, warm=1)
    return out


async def main(args: argparse.Namespace) -> None:
    db = args.database or f"turnout_bench_usage_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(SERVER)
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db)
    if not exists:
        await admin.execute(f'CREATE DATABASE "{db}"')
    await admin.close()
    dsn = SERVER.rsplit("/", 1)[0] + "/" + db
    conn = await asyncpg.connect(dsn)
    await migrate(conn, SCHEMA, migrations(), outbox=True)
    await migrate(conn, "metering_empty", migrations(), outbox=True)
    await conn.close()
    pool = await create_pool(dsn, schema=SCHEMA, min_size=1, max_size=4)
    empty = await create_pool(dsn, schema="metering_empty", min_size=1, max_size=2)
    end = datetime.now(UTC)
    report: dict[str, Any] = {}
    try:
        async with pool.acquire() as c:
            have = await c.fetchval("SELECT count(*) FROM usage_log")
        if have < args.rows:
            print(f"loading {args.rows - have:,} rows with COPY ...", file=sys.stderr)
            report["load_s"] = await load(pool, args.rows - have, end)
            async with pool.acquire() as c:
                t = time.perf_counter()
                await c.execute("TRUNCATE usage_daily, usage_daily_models")
                await c.execute(ROLLUP)
                await c.execute(ROLLUP_MODELS)
                report["rollup_s"] = time.perf_counter() - t
                t = time.perf_counter()
                await c.execute("VACUUM ANALYZE usage_log")
                await c.execute("VACUUM ANALYZE usage_daily")
                report["vacuum_s"] = time.perf_counter() - t
        async with pool.acquire() as c:
            report["rows"] = await c.fetchval("SELECT count(*) FROM usage_log")
            report["rollup_rows"] = await c.fetchval("SELECT count(*) FROM usage_daily")
            report["size"] = await c.fetchval(
                "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits"
                " WHERE inhparent = 'usage_log'::regclass"
            )
        print(f"measuring ({report['rows']:,} rows) ...", file=sys.stderr)
        report["timings"] = await measure(pool, args.runs, end)
        report["ingest_full"] = await ingest_rate(pool, SCHEMA, args.ingest)
        report["ingest_empty"] = await ingest_rate(empty, "metering_empty", args.ingest)
    finally:
        await pool.close()
        await empty.close()
        if not args.keep and not args.database:
            admin = await asyncpg.connect(SERVER)
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await admin.close()
    print_report(args, report)


def print_report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if "model name" in ln), "?"
    )
    print(f"# Usage at scale ({r['rows']:,} rows)\n")
    print(f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} vCPU {cpu};"
          f" {platform.python_version()}")  # fmt: skip
    print(f"- Command: `uv run python bench/usage_scale.py {' '.join(sys.argv[1:])}`")
    print(f"- usage_log: {r['rows']:,} rows in {r['size']} (monthly partitions, 90 days);"
          f" usage_daily: {r['rollup_rows']:,} rows")  # fmt: skip
    if "load_s" in r:
        print(f"- Load: COPY {r['load_s']:.0f} s ({args.rows / r['load_s']:,.0f} rows/s),"
              f" rollup {r['rollup_s']:.0f} s, VACUUM ANALYZE {r['vacuum_s']:.0f} s")  # fmt: skip
    print(f"\n| query | p50 ms | p95 ms | max ms |\n|---|---|---|---|")  # noqa: F541
    for name, t in r["timings"].items():
        print(f"| {name} | {t['p50']:.1f} | {t['p95']:.1f} | {t['max']:.1f} |")
    full, empty = r["ingest_full"], r["ingest_empty"]
    print(f"\nIngest (metering's write path, batches of 5,000, {args.ingest:,} records):"
          f" {full:,.0f} records/s into the {r['rows']:,}-row table, {empty:,.0f} records/s"
          f" into an empty one (ratio {full / empty:.2f})")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--ingest", type=int, default=100_000)
    ap.add_argument("--database", help="reuse this database (rows already there are kept)")
    ap.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    asyncio.run(main(ap.parse_args()))
