"""usage_daily_models (migration 0011): the rollup without users and keys holds exactly the
sums of usage_daily, whether ingest built it or the migration filled it, and the summaries
that involve no user or key read it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import asyncpg
import pytest

from turnout_common.migrations import migrate
from turnout_metering.migrations import migrations
from turnout_metering.usage import queries
from turnout_metering.usage.partitions import Partitions
from turnout_metering.usage.queries import UsageFilter, rollup_for
from turnout_metering.usage.repository import write_batch

from .conftest import usage

DIMS = "day, model, provider_id, provider, source, outcome"
_E = ", ".join(f"e.{c}" for c in DIMS.split(", "))
_D = ", ".join(f"d.{c}" for c in DIMS.split(", "))
FROM_DAILY = f"""
SELECT {_D}, sum(requests)::bigint AS requests, sum(errors)::bigint AS errors,
       sum(cost_usd) AS cost_usd, sum(billed_usd) AS billed_usd,
       sum(input_tokens)::bigint AS input_tokens,
       (SELECT array_agg(s ORDER BY i) FROM (
            SELECT i, sum(x) AS s FROM usage_daily e, unnest(e.lat_hist) WITH ORDINALITY u(x, i)
            WHERE ({_E}) = ({_D}) GROUP BY i) h)::bigint[] AS lat_hist
FROM usage_daily d GROUP BY {_D} ORDER BY {_D}
"""
MODELS = f"""
SELECT {DIMS}, requests, errors, cost_usd, billed_usd, input_tokens, lat_hist
FROM usage_daily_models ORDER BY {DIMS}
"""


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database_url)
    schema = f"metering_rollups_{uuid.uuid4().hex[:8]}"
    await migrate(c, schema, migrations())
    await c.execute(f"SET search_path TO {schema}, public")
    try:
        yield c
    finally:
        await c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await c.close()


async def test_models_rollup_equals_usage_daily_summed(conn: asyncpg.Connection) -> None:
    day = datetime(2026, 10, 5, 12, tzinfo=UTC)
    events = [
        usage(user_id=f"u{i % 7}", key_id=f"k{i % 5}", model=f"m{i % 3}",
              source="lab" if i % 4 == 0 else "api", latency_ms=float(i * 37 % 9000),
              cost=f"0.{i:09d}", started_at=day + timedelta(hours=i % 50),
              status=502 if i % 9 == 0 else 200,
              outcome="upstream_error" if i % 9 == 0 else "success")
        for i in range(1, 400)
    ]  # fmt: skip
    schema = await conn.fetchval("SELECT current_schema()")
    await Partitions(schema, "month", 0, None).ensure_for(
        conn, [e.started_at for e in events], datetime.now(UTC)
    )
    for chunk in (events[:150], events[150:], events[:10]):  # with a redelivery
        async with conn.transaction():
            await write_batch(conn, chunk, period="2026-10")
    want = [dict(r) for r in await conn.fetch(FROM_DAILY)]
    built = [dict(r) for r in await conn.fetch(MODELS)]
    assert built == want and sum(r["requests"] for r in built) == 399

    # the migration's fill gives the same rows
    sql = (files("turnout_metering.migrations") / "0011_usage_daily_models.sql").read_text()
    await conn.execute("TRUNCATE usage_daily_models")
    await conn.execute(sql[sql.index("INSERT INTO usage_daily_models") :])
    assert [dict(r) for r in await conn.fetch(MODELS)] == want

    # summaries: the same answer from either rollup
    assert rollup_for(UsageFilter(), "model") == "usage_daily_models"
    assert rollup_for(UsageFilter(user_id="u1"), "model") == "usage_daily"
    assert rollup_for(UsageFilter(), "key") == "usage_daily"
    data, totals, groups = await queries.summary(conn, UsageFilter(), "model", None, None)
    by_key = await queries.summary(conn, UsageFilter(), "key", None, None)
    assert totals == by_key[1]
    assert [(g["key"], g["requests"]) for g in data] == [("m0", 133), ("m1", 133), ("m2", 133)]
    assert groups == 3 and totals["requests"] == 399

    # the costliest first, cut to a limit: the same groups, the totals of all of them
    top, top_totals, groups = await queries.summary(
        conn, UsageFilter(), "model", None, None, sort="-cost", limit=2
    )
    costliest = sorted(data, key=lambda g: g["cost_usd"], reverse=True)[:2]
    assert top == costliest and top_totals == totals and groups == 3
    most = await queries.summary(conn, UsageFilter(), "source", None, None, sort="-requests")
    assert [g["requests"] for g in most[0]] == sorted(
        (g["requests"] for g in most[0]), reverse=True
    )


async def test_list_counts_from_the_rollup_are_exact(conn: asyncpg.Connection) -> None:
    """GET /usage's ``total`` counts whole days from the rollup: it equals counting the log
    for every window (partial days, whole days, open ends) and filter."""
    start = datetime(2026, 9, 28, 17, 30, tzinfo=UTC)
    events = [
        usage(user_id=f"u{i % 4}", key_id=f"k{i % 6}", model=f"m{i % 3}",
              provider="alpha" if i % 5 else "beta", provider_id="pa" if i % 5 else "pb",
              started_at=start + timedelta(minutes=97 * i), status=500 if i % 11 == 0 else 200,
              outcome="upstream_error" if i % 11 == 0 else "success")
        for i in range(300)
    ]  # fmt: skip
    schema = await conn.fetchval("SELECT current_schema()")
    await Partitions(schema, "month", 0, None).ensure_for(
        conn, [e.started_at for e in events], datetime.now(UTC)
    )
    async with conn.transaction():
        await write_batch(conn, events, period="2026-10")
    t = datetime(2026, 10, 3, 11, 15, tzinfo=UTC)
    windows = [
        (None, None), (t, None), (None, t), (t, t + timedelta(days=4, hours=3)),
        (t.replace(hour=0, minute=0), t + timedelta(days=2)), (t, t + timedelta(hours=5)),
        (start - timedelta(days=40), start + timedelta(days=90)),
        (t, t.replace(hour=0, minute=0) + timedelta(days=3)),
    ]  # fmt: skip
    filters = [
        UsageFilter(), UsageFilter(user_id="u1"), UsageFilter(key_id="k5"),
        UsageFilter(model="m2", outcome="success"), UsageFilter(provider="beta"),
        UsageFilter(provider="pa", user_id="u3"), UsageFilter(status=500),
        UsageFilter(source="api"),
    ]  # fmt: skip
    for lo, hi in windows:
        for f in filters:
            exact = await conn.fetchval(
                "SELECT count(*) FROM usage_log WHERE ($1::timestamptz IS NULL OR started_at >= $1)"
                " AND ($2::timestamptz IS NULL OR started_at < $2)"
                " AND ($3::text IS NULL OR user_id = $3) AND ($4::text IS NULL OR key_id = $4)"
                " AND ($5::text IS NULL OR model = $5) AND ($6::text IS NULL OR outcome = $6)"
                " AND ($7::text IS NULL OR provider = $7 OR provider_id = $7)"
                " AND ($8::int IS NULL OR status = $8)",
                lo, hi, f.user_id, f.key_id, f.model, f.outcome, f.provider, f.status,
            )  # fmt: skip
            assert await queries.count_usage(conn, f, lo, hi) == exact, (lo, hi, f)
    assert await queries.count_usage(conn, UsageFilter(), None, None) == 300
