"""Migration 0002 (provider id in the daily rollup): rollup rows written under the old schema
are rebuilt from the raw log with their provider ids, and equal what ingest builds now."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from turnout_common.events import UsageEvent
from turnout_common.migrations import migrate
from turnout_metering.migrations import migrations
from turnout_metering.usage import queries as usage_repo
from turnout_metering.usage.latency import BOUNDS, bucket_index_sql, histogram_sql
from turnout_metering.usage.partitions import Partitions
from turnout_metering.usage.queries import UsageFilter
from turnout_metering.usage.repository import COLUMNS, TEMP_DDL, _row, write_batch

from .conftest import usage

# the log's columns before 0004 (route, power_level, task_type), 0006 (api), 0007 (billed_usd)
_OLD = ("seq", "attempts", "route", "power_level", "task_type", "api", "billed_usd")
_LOG = ", ".join(c for c in COLUMNS if c not in _OLD)
# What ingest did before migration 0002: the rollup keyed by provider name only.
OLD_WRITE = f"""
WITH ins AS (
    INSERT INTO usage_log ({_LOG}, attempts)
    SELECT DISTINCT ON (request_id) {_LOG}, attempts::jsonb
    FROM usage_in ORDER BY request_id, seq
    ON CONFLICT (request_id) DO NOTHING
    RETURNING *
)
INSERT INTO usage_daily AS d (day, user_id, key_id, model, provider, source, outcome, requests,
                              errors, input_tokens, output_tokens, cached_tokens, cost_usd,
                              latency_sum_ms, lat_hist)
SELECT (started_at AT TIME ZONE 'UTC')::date, coalesce(user_id, ''), coalesce(key_id, ''),
       coalesce(model, ''), coalesce(provider, ''), source, outcome,
       count(*), count(*) FILTER (WHERE outcome <> 'success'), sum(input_tokens),
       sum(output_tokens), sum(cached_tokens), sum(cost_usd), sum(latency_ms),
       {histogram_sql("b")}
FROM (SELECT *, {bucket_index_sql("latency_ms")} AS b FROM ins) n
GROUP BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT (day, user_id, key_id, model, provider, source, outcome) DO UPDATE SET
    requests = d.requests + EXCLUDED.requests,
    errors = d.errors + EXCLUDED.errors,
    input_tokens = d.input_tokens + EXCLUDED.input_tokens,
    output_tokens = d.output_tokens + EXCLUDED.output_tokens,
    cached_tokens = d.cached_tokens + EXCLUDED.cached_tokens,
    cost_usd = d.cost_usd + EXCLUDED.cost_usd,
    latency_sum_ms = d.latency_sum_ms + EXCLUDED.latency_sum_ms,
    lat_hist = (SELECT array_agg(x + y ORDER BY i)
                FROM unnest(d.lat_hist, EXCLUDED.lat_hist) WITH ORDINALITY AS t(x, y, i))
"""
ROLLUP = (
    "SELECT day, user_id, key_id, model, provider_id, provider, source, outcome, requests,"
    " errors, input_tokens, output_tokens, cached_tokens, cost_usd, lat_hist, latency_sum_ms"
    " FROM usage_daily ORDER BY day, user_id, key_id, model, provider_id, provider, source,"
    " outcome"
)
# every bucket, and values on the bounds (a bound belongs to the bucket above it)
LATENCIES = [0.0, 3.5, 5.0, 9.99, 10.0, 42.0, 100.0, 250.0, 1000.0, 7500.0, 120_000.0, 2e5]
LATENCIES += [b + 0.5 for b in BOUNDS]


def history() -> list[list[UsageEvent]]:
    """Batches over two days: prov-p renamed "alpha" -> "beta" (on day 1, with a late record
    under the old name), "shared" served by two provider ids on the same day, and records
    without a provider (rejected before routing)."""
    day0 = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    day1 = day0 + timedelta(days=1)
    n = iter(range(10_000))

    def ev(started: datetime, **kw: Any) -> UsageEvent:
        i = next(n)
        kw.setdefault("latency_ms", LATENCIES[i % len(LATENCIES)])
        return usage(f"r{i:04d}", started_at=started + timedelta(minutes=i), **kw)

    alpha = {"provider": "alpha", "provider_id": "prov-p"}
    beta = {"provider": "beta", "provider_id": "prov-p"}
    first = [ev(day0, **alpha) for _ in range(20)]
    first += [ev(day0, provider="shared", provider_id="q1") for _ in range(7)]
    first += [ev(day0, provider="shared", provider_id="q2") for _ in range(3)]
    first += [ev(day0, provider="shared", provider_id="q2", user_id="bob") for _ in range(5)]
    first += [ev(day0, provider="shared", provider_id="q2", status=502, outcome="upstream_error")]
    second = [ev(day1, **alpha) for _ in range(4)]
    second += [ev(day1 + timedelta(hours=2), **beta) for _ in range(30)]
    second += [ev(day1, provider=None, provider_id=None, status=429, outcome="rejected")]
    second += [ev(day0, **alpha, model="gpt-4o") for _ in range(3)]  # day 0, a batch later
    late = [ev(day1, **alpha, key_id=None)]  # before the rename, delivered after it
    return [first, second, first[:5] + late]  # with a redelivery


async def write_old(conn: asyncpg.Connection, batch: Sequence[UsageEvent]) -> None:
    async with conn.transaction():
        await conn.execute(TEMP_DDL)
        await conn.copy_records_to_table(
            "usage_in", records=[_row(i, e) for i, e in enumerate(batch)], columns=COLUMNS
        )
        await conn.execute(OLD_WRITE)


class Schemas:
    """Fresh metering schemas on one connection (the last one made is on its search_path)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.made: list[str] = []

    async def new(self, prefix: str, upto: int | None = None) -> str:
        """A schema migrated up to version ``upto`` (all of them by default)."""
        schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.made.append(schema)
        chosen = [m for m in migrations() if upto is None or m.version <= upto]
        await migrate(self.conn, schema, chosen)
        await self.conn.execute(f"SET search_path TO {schema}, public")
        return schema


@pytest.fixture
async def schemas(database_url: str) -> AsyncIterator[Schemas]:
    conn = await asyncpg.connect(database_url)
    made = Schemas(conn)
    try:
        yield made
    finally:
        for schema in made.made:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


async def rollup(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(ROLLUP)]


async def test_rebuild_gives_rollup_rows_their_provider_ids(schemas: Schemas) -> None:
    conn = schemas.conn
    batches = history()
    events = {e.request_id: e for batch in batches for e in batch}

    old_schema = await schemas.new("metering_mig_old", upto=1)
    for batch in batches:
        await write_old(conn, batch)
    shared = await conn.fetch(
        "SELECT requests FROM usage_daily WHERE provider = 'shared' AND user_id = 'alice'"
        " AND outcome = 'success'"
    )
    assert [r["requests"] for r in shared] == [10]  # one row, two provider ids
    before = await conn.fetchval("SELECT sum(requests) FROM usage_daily")
    assert before == len(events)
    applied = await migrate(conn, old_schema, migrations())
    assert applied[0] == "0002_usage_daily_provider_id.sql"
    rebuilt = await rollup(conn)
    names = dict(await conn.fetch("SELECT provider_id, name FROM provider_names"))
    by_id = await usage_repo.summary(conn, UsageFilter(provider="prov-p"), "provider", None, None)
    by_old = await usage_repo.summary(conn, UsageFilter(provider="alpha"), "day", None, None)

    new_schema = await schemas.new("metering_mig_new")
    moments = [e.started_at for batch in batches for e in batch]  # partitions (migration 0008)
    await Partitions(new_schema, "month", 0, None).ensure_for(conn, moments, datetime.now(UTC))
    for batch in batches:
        async with conn.transaction():
            await write_batch(conn, batch, period="2026-03")
    ingested = await rollup(conn)
    assert dict(await conn.fetch("SELECT provider_id, name FROM provider_names")) == names

    # the rebuild equals the rollup ingest builds now (float sums: up to the summing order)
    assert len(rebuilt) == len(ingested)
    for got, want in zip(rebuilt, ingested, strict=True):
        assert math.isclose(got.pop("latency_sum_ms"), want.pop("latency_sum_ms"), rel_tol=1e-12)
        assert got == want
    # ... and what the raw records say
    assert sum(r["requests"] for r in rebuilt) == len(events)
    shared_rows = {
        (r["provider_id"], r["user_id"], r["outcome"]): r["requests"]
        for r in rebuilt
        if r["provider"] == "shared"
    }
    assert shared_rows == {
        ("q1", "alice", "success"): 7,
        ("q2", "alice", "success"): 3,
        ("q2", "bob", "success"): 5,
        ("q2", "alice", "upstream_error"): 1,
    }
    unrouted = [r for r in rebuilt if r["outcome"] == "rejected"]
    assert [(r["provider_id"], r["provider"], r["requests"]) for r in unrouted] == [("", "", 1)]
    assert {r["provider_id"] for r in rebuilt if r["provider"] in ("alpha", "beta")} == {"prov-p"}
    hist = [0] * len(rebuilt[0]["lat_hist"])
    for r in rebuilt:
        hist = [a + b for a, b in zip(hist, r["lat_hist"], strict=True)]
    assert sum(hist) == len(events) and all(hist)  # every bucket used
    assert names == {"prov-p": "beta", "q1": "shared", "q2": "shared"}

    # after the migration: by id, every name the provider had; by the old name, its records
    data, totals, _ = by_id
    assert [(g["key"], g["requests"]) for g in data] == [("beta", 58)]
    assert totals["requests"] == 58
    data, totals, _ = by_old
    assert [(g["key"], g["requests"]) for g in data] == [("2026-03-09", 23), ("2026-03-10", 5)]
    assert totals["requests"] == 28


async def test_rebuild_of_an_empty_rollup(schemas: Schemas) -> None:
    conn = schemas.conn
    schema = await schemas.new("metering_mig_empty", upto=1)
    applied = await migrate(conn, schema, migrations())
    assert applied[0] == "0002_usage_daily_provider_id.sql"
    assert await conn.fetchval("SELECT count(*) FROM usage_daily") == 0
    assert await conn.fetchval("SELECT count(*) FROM provider_names") == 0
    assert await migrate(conn, schema, migrations()) == []


@pytest.mark.parametrize("table", ["usage_log", "credit_ledger"])
async def test_the_books_refuse_update_delete_and_truncate(schemas: Schemas, table: str) -> None:
    conn = schemas.conn
    await schemas.new("metering_books")
    if table == "usage_log":
        async with conn.transaction():
            await write_batch(conn, [usage("r1")], period="2026-03")
    else:
        await conn.execute("INSERT INTO credit_accounts (user_id) VALUES ('alice')")
        await conn.execute(
            "INSERT INTO credit_ledger (user_id, kind, amount_usd, period)"
            " VALUES ('alice', 'grant', 5, '2026-03')"
        )
    assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1
    for statement in (
        f"UPDATE {table} SET user_id = 'mallory'",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
    ):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(statement)
