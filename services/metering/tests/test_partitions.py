"""usage_log partitioned by time (issue 20 items 1-2): migration 0008 moves every existing row,
partitions are made ahead and on demand (monthly or daily), append-only holds per partition,
and retention drops whole partitions while the rollups and the ledger stay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from turnout_common.migrations import migrate
from turnout_metering.main import migrations
from turnout_metering.usage.partitions import Partitions, Span, uncovered, unit_of, units_ahead

# one row per i: a mix of months, the last microsecond of a month and the first of the next,
# NULL users and keys, and costs with all 9 decimals
SEED = """
INSERT INTO usage_log (request_id, event_id, started_at, period, user_id, key_id, purpose,
                       model, provider, provider_id, input_tokens, output_tokens, cached_tokens,
                       cost_usd, billed_usd, latency_ms, status, outcome, source, attempts, route,
                       api)
SELECT 'r' || i, gen_random_uuid(), t, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM'),
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'u' || (i % 5) END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE 'k' || (i % 9) END, 'chat', 'm' || (i % 3), 'p',
       'p1', i, 2 * i, i % 4, (i * 0.000000123)::numeric(24, 9),
       CASE WHEN i % 3 = 0 THEN NULL ELSE (i * 0.000000050)::numeric(24, 9) END, i % 1000, 200,
       'success', 'api', '[{"provider": "p"}]'::jsonb, 'model', 'chat.completions'
FROM (
    SELECT i, timestamptz '2026-01-03 10:00:00+00' + (i * interval '97 minutes') AS t
    FROM generate_series(1, $1::int) i
    UNION ALL SELECT $1 + 1, timestamptz '2026-01-31 23:59:59.999999+00'
    UNION ALL SELECT $1 + 2, timestamptz '2026-02-01 00:00:00+00'
    UNION ALL SELECT $1 + 3, timestamptz '2026-02-28 23:30:00-05'  -- 2026-03-01 04:30 UTC
) s
"""
STATS = """
SELECT count(*) AS rows, sum(cost_usd) AS cost_usd, sum(billed_usd) AS billed_usd,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       md5(string_agg(concat_ws('|', request_id, event_id, started_at, ingested_at, period,
                                user_id, key_id, model, cost_usd, billed_usd, latency_ms,
                                attempts, route, api),
                      ',' ORDER BY request_id)) AS digest
FROM usage_log
"""
BY_MONTH = "SELECT period, count(*) AS n, sum(cost_usd) AS c FROM usage_log GROUP BY 1 ORDER BY 1"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database_url)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def schema(conn: asyncpg.Connection) -> AsyncIterator[str]:
    name = f"metering_part_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


async def migrated(conn: asyncpg.Connection, schema: str, upto: int | None = None) -> None:
    await migrate(conn, schema, [m for m in migrations() if upto is None or m.version <= upto])
    await conn.execute(f"SET search_path TO {schema}, public")


async def partitions_of(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass($1) ORDER BY 1",
        f"{schema}.usage_log",
    )
    return [r[0] for r in rows]


async def test_migration_moves_every_existing_row(
    conn: asyncpg.Connection, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await migrated(conn, schema, upto=7)
    await conn.execute(SEED, 5000)
    before = dict(await conn.fetchrow(STATS))
    months_before = [tuple(r) for r in await conn.fetch(BY_MONTH)]
    daily_before = await conn.fetchval("SELECT count(*) FROM usage_daily")

    applied = await migrate(conn, schema, migrations())
    assert applied[0] == "0008_usage_log_partitioned.sql"
    after = dict(await conn.fetchrow(STATS))
    with capsys.disabled():
        print(f"\nmigration 0008: before {before}\n                after  {after}")
    assert after == before  # same rows, same values, byte for byte (the digest)
    assert before["rows"] == 5003
    assert [tuple(r) for r in await conn.fetch(BY_MONTH)] == months_before
    assert await conn.fetchval("SELECT count(*) FROM usage_daily") == daily_before
    assert await conn.fetchval(
        "SELECT relkind FROM pg_class WHERE oid = 'usage_log'::regclass"
    ) == (b"p")
    assert await conn.fetchval("SELECT to_regclass('usage_log_unpartitioned')") is None
    # every row sits in the partition of its UTC month
    misplaced = await conn.fetchval(
        "SELECT count(*) FROM usage_log"
        " WHERE tableoid::regclass::text NOT LIKE"
        " '%usage_log_p' || to_char(date_trunc('month', started_at AT TIME ZONE 'UTC'),"
        " 'YYYYMMDD') || '_%'"
    )
    assert misplaced == 0
    names = await partitions_of(conn, schema)
    assert names[:3] == [
        "usage_log_p20260101_20260201",
        "usage_log_p20260201_20260301",
        "usage_log_p20260301_20260401",
    ]
    edge = await conn.fetchval(
        "SELECT tableoid::regclass::text FROM usage_log WHERE request_id = 'r5003'"
    )
    assert edge.endswith("usage_log_p20260301_20260401")  # 23:30 at -05:00 is March in UTC
    # the primary key now holds the partition key; a redelivery is still a conflict
    inserted = await conn.fetchval(
        "INSERT INTO usage_log SELECT * FROM usage_log WHERE request_id = 'r1'"
        " ON CONFLICT (request_id, started_at) DO NOTHING RETURNING request_id"
    )
    assert inserted is None
    assert await migrate(conn, schema, migrations()) == []


async def test_an_empty_log_is_partitioned_too(conn: asyncpg.Connection, schema: str) -> None:
    await migrated(conn, schema)
    assert await conn.fetchval("SELECT count(*) FROM usage_log") == 0
    names = await partitions_of(conn, schema)
    now = datetime.now(UTC)
    assert unit_of(now, "month").name in names  # this month and the next
    assert unit_of(unit_of(now, "month").hi, "month").name in names


@pytest.mark.parametrize("where", ["parent", "partition"])
async def test_append_only_holds_for_every_partition(
    conn: asyncpg.Connection, schema: str, where: str
) -> None:
    await migrated(conn, schema, upto=7)
    await conn.execute(SEED, 10)
    await migrated(conn, schema)
    table = "usage_log" if where == "parent" else "usage_log_p20260101_20260201"
    for statement in (
        f"UPDATE {table} SET user_id = 'mallory'",
        f"UPDATE {table} SET cost_usd = 0",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
    ):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(statement)
    # a partition made later (by metering, here daily) gets the same guards
    parts = Partitions(schema, "day", ahead=0, retention_days=None)
    made = await parts.ensure_for(conn, [at("2027-06-05T12:00:00")], now=at("2027-06-05"))
    assert made == ["usage_log_p20270605_20270606"]
    await conn.execute(SEED.replace("2026-01-03 10:00:00+00", "2027-06-05 00:00:00+00"), 1)
    assert await conn.fetchval("SELECT count(*) FROM usage_log_p20270605_20270606") == 1
    for statement in ("DELETE FROM", "TRUNCATE"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(f"{statement} usage_log_p20270605_20270606")


def test_units_and_what_is_left_uncovered() -> None:
    march = unit_of(at("2026-03-31T23:59:59"), "month")
    assert (march.lo, march.hi) == (at("2026-03-01"), at("2026-04-01"))
    assert unit_of(at("2026-12-15"), "month").hi == at("2027-01-01")
    assert unit_of(at("2026-03-31T23:59:59"), "day").name == "usage_log_p20260331_20260401"
    assert [s.name for s in units_ahead(at("2026-12-15"), "month", 2)] == [
        "usage_log_p20261201_20270101",
        "usage_log_p20270101_20270201",
        "usage_log_p20270201_20270301",
    ]
    days = [unit_of(at(f"2026-04-0{d}"), "day") for d in (1, 2)]
    # month after days: only the rest of the month
    assert uncovered(unit_of(at("2026-04-10"), "month"), days) == [
        Span(at("2026-04-03"), at("2026-05-01"))
    ]
    # a day inside a month: nothing
    assert uncovered(days[0], [unit_of(at("2026-04-10"), "month")]) == []
    assert uncovered(march, []) == [march]


async def test_partitions_ahead_on_demand_and_switching_unit(
    conn: asyncpg.Connection, schema: str
) -> None:
    await migrated(conn, schema)
    now = at("2031-05-20")
    monthly = Partitions(schema, "month", ahead=2, retention_days=None)
    assert await monthly.ensure_ahead(conn, now) == [
        "usage_log_p20310501_20310601",
        "usage_log_p20310601_20310701",
        "usage_log_p20310701_20310801",
    ]
    assert await monthly.ensure_ahead(conn, now) == []  # idempotent
    daily = Partitions(schema, "day", ahead=3, retention_days=None)
    # the days of July are in July's partition; August is made day by day
    assert await daily.ensure_ahead(conn, at("2031-07-30")) == [
        "usage_log_p20310801_20310802",
        "usage_log_p20310802_20310803",
    ]
    # a record from long ago gets its partition when it arrives (nothing expires here)
    assert await daily.ensure_for(conn, [at("2029-02-03T04:05:06")], now) == [
        "usage_log_p20290203_20290204"
    ]
    assert await daily.ensure_for(conn, [at("2029-02-03T23:00:00")], now) == []


async def test_retention_drops_whole_partitions_and_keeps_the_books(
    conn: asyncpg.Connection, schema: str
) -> None:
    await migrated(conn, schema, upto=7)
    await conn.execute(SEED, 2000)  # 2026-01-03 .. 2026-05-16
    await conn.execute(
        "INSERT INTO usage_daily (day, user_id, requests, errors, input_tokens, output_tokens,"
        " cached_tokens, cost_usd, billed_usd, latency_sum_ms, lat_hist)"
        " SELECT d::date, 'u1', 1, 0, 1, 1, 0, 0.5, 0.5, 1, '{}' FROM"
        " generate_series(timestamp '2026-01-01', '2026-03-31', interval '1 day') d"
    )
    await conn.execute("INSERT INTO credit_accounts (user_id) VALUES ('u1')")
    await conn.execute(
        "INSERT INTO credit_ledger (user_id, kind, amount_usd, period)"
        " VALUES ('u1', 'grant', 5, '2026-01')"
    )
    await migrated(conn, schema)
    books = (
        "SELECT (SELECT sum(cost_usd) FROM usage_daily), (SELECT count(*) FROM usage_daily),"
        " (SELECT sum(amount_usd) FROM credit_ledger)"
    )
    before = tuple(await conn.fetchrow(books))
    kept = await conn.fetchval("SELECT count(*) FROM usage_log WHERE period >= '2026-03'")

    keep = Partitions(schema, "month", ahead=0, retention_days=None)
    assert await keep.drop_expired(conn, at("2026-06-01")) == []  # default: keep everything
    parts = Partitions(schema, "month", ahead=0, retention_days=40)
    assert parts.horizon(at("2026-04-12")) == at("2026-03-03")
    # February ends before the horizon, March does not: whole partitions only
    assert await parts.drop_expired(conn, at("2026-04-12")) == [
        "usage_log_p20260101_20260201",
        "usage_log_p20260201_20260301",
    ]
    assert await conn.fetchval("SELECT min(period) FROM usage_log") == "2026-03"
    assert await conn.fetchval("SELECT count(*) FROM usage_log") == kept
    assert await parts.raw_since(conn) == at("2026-03-01")
    assert tuple(await conn.fetchrow(books)) == before  # rollups and ledger untouched
    # a record older than the horizon gets no partition again (it is set aside instead)
    assert await parts.ensure_for(conn, [at("2026-02-10")], at("2026-04-12")) == []
    with pytest.raises(asyncpg.CheckViolationError, match="no partition"):
        await conn.execute(SEED.replace("2026-01-03 10:00:00+00", "2026-02-10 00:00:00+00"), 1)
