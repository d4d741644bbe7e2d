"""Read queries: the raw log for listings and exports, the daily rollup for summaries."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from turnout_common.db import Where
from turnout_metering.usage.latency import percentile, summed_histogram_sql

LIST_COLUMNS = (
    "request_id, started_at, user_id, key_id, purpose, source, requested_model, model,"
    " upstream_model, provider, provider_id, byok, input_tokens, output_tokens, cached_tokens,"
    " estimated, cost_usd, coalesce(billed_usd, cost_usd) AS billed_usd, latency_ms, ttft_ms,"
    " status, outcome, error_code, stream,"
    " fallbacks, attempts, route, power_level, task_type, api"
)
GROUP_SQL = {
    "model": "model",
    # a provider's rows under its latest name (provider_names), so a renamed provider is one
    # group; rows without a provider id under the name they were recorded with
    "provider": "CASE WHEN provider_id = '' THEN provider"
    " ELSE coalesce(provider_latest, provider_id) END",
    "user": "user_id",
    "key": "key_id",
    "day": "day::text",
    "source": "source",
}


# The rollup plus each row's provider's latest name, under the rollup's own column names (so
# the same filters apply). provider_names is small (a row per provider id): a hash join.
_NAMED = (
    "(SELECT d.*, n.name AS provider_latest FROM {table} d"
    " LEFT JOIN provider_names n ON n.provider_id = d.provider_id) usage_daily"
)


def rollup_for(f: UsageFilter, group_by: str) -> str:
    """usage_daily_models (no users, no keys: a few rows a day) when the summary neither filters
    nor groups by a user or a key, else usage_daily. Both hold the same sums."""
    personal = f.user_id is not None or f.key_id is not None or group_by in ("user", "key")
    return "usage_daily" if personal else "usage_daily_models"


@dataclass(frozen=True, slots=True)
class UsageFilter:
    user_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    provider: str | None = None
    """A provider id or a name it was recorded under (SPEC: names or ids): the rows whose
    ``provider_id`` or ``provider`` equals it. By id, every row of the provider whatever its
    name was then; by name, the rows recorded under that name (an earlier name too)."""
    source: str | None = None
    outcome: str | None = None
    status: int | None = None


def _where(
    f: UsageFilter, column: str, lo: Any = None, hi: Any = None, *, hi_op: str = "<"
) -> tuple[str, list[Any]]:
    """The filter's clauses and the window on ``column`` (``column >= lo``, ``column {hi_op} hi``,
    each when given): ``(" WHERE ...", args)``, or ``("", [])`` when nothing filters. On the
    rollups (``column`` is ``day``) ``status`` does not apply: they have no such column."""
    w = Where()
    for field in fields(f):
        if column == "day" and field.name == "status":
            continue
        cond = f"{field.name} = ?"
        if field.name == "provider":
            # the log and the rollup both have the two columns; neither is indexed, so the OR
            # adds nothing but a comparison per row to the same scan
            cond = "(provider = ? OR provider_id = ?)"
        w.given(cond, getattr(f, field.name))
    w.given(f"{column} >= ?", lo)
    w.given(f"{column} {hi_op} ?", hi)
    return w.sql, w.args


async def list_usage(
    conn: asyncpg.Connection,
    f: UsageFilter,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    where, args = _where(f, "started_at", start, end)
    total = await count_usage(conn, f, start, end)
    n = len(args)
    rows = await conn.fetch(
        f"SELECT {LIST_COLUMNS} FROM usage_log{where}"
        f" ORDER BY started_at DESC, request_id LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return list(rows), int(total)


SUMS = (
    "sum(requests) AS requests, sum(errors) AS errors, sum(input_tokens) AS input_tokens,"
    " sum(output_tokens) AS output_tokens, sum(cached_tokens) AS cached_tokens,"
    " sum(cost_usd) AS cost_usd, sum(billed_usd) AS billed_usd,"
    f" sum(latency_sum_ms) AS latency_sum_ms, {summed_histogram_sql()} AS hist"
)
"""A summary row's sums over rollup rows, its latency histogram added up bucket by bucket."""
SUMMARY_SORT = {
    "key": "1 NULLS LAST",
    "-requests": "sum(requests) DESC, 1 NULLS LAST",
    "-cost": "sum(cost_usd) DESC, 1 NULLS LAST",
}


def _summary_row(r: asyncpg.Record) -> dict[str, Any]:
    requests = int(r["requests"] or 0)
    hist = [n or 0 for n in r["hist"]]  # NULL sums: no rollup row matched
    return {
        "key": r.get("k"),
        "requests": requests,
        "errors": int(r["errors"] or 0),
        "input_tokens": int(r["input_tokens"] or 0),
        "output_tokens": int(r["output_tokens"] or 0),
        "cached_tokens": int(r["cached_tokens"] or 0),
        "cost_usd": r["cost_usd"] or 0,
        "billed_usd": r["billed_usd"] or 0,
        "avg_latency_ms": round(r["latency_sum_ms"] / requests, 3) if requests else None,
        "p50_latency_ms": percentile(hist, 0.50),
        "p95_latency_ms": percentile(hist, 0.95),
    }


async def summary(
    conn: asyncpg.Connection,
    f: UsageFilter,
    group_by: str,
    start: date | None,
    end: date | None,
    *,
    sort: str = "key",
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Aggregates from the daily rollup (whole UTC days, ``start``..``end`` inclusive):
    ``usage_daily``, or ``usage_daily_models`` when no user or key is involved. Answers the
    groups (ordered by ``sort``, the first ``limit`` of them), the totals of every group, and
    how many groups there are.

    Grouped by provider, each row counts under its provider's latest name (``provider_names``;
    its id if it never had one), or, without a provider id, under the name it was recorded
    with: a renamed provider is one group, named as it is now, and keys stay unique.
    """
    where, args = _where(f, "day", start, end, hi_op="<=")
    group = GROUP_SQL[group_by]
    rollup = rollup_for(f, group_by)
    table = _NAMED.format(table=rollup) if group_by == "provider" else f"{rollup} usage_daily"
    rows = await conn.fetch(
        f"SELECT NULLIF({group}, '') AS k, {SUMS}, count(*) OVER () AS groups"
        f" FROM {table}{where} GROUP BY 1 ORDER BY {SUMMARY_SORT[sort]}"
        f" LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    total = await conn.fetchrow(f"SELECT {SUMS} FROM {rollup}{where}", *args)
    groups = int(rows[0]["groups"]) if rows else 0
    return [_summary_row(r) for r in rows], _summary_row(total), groups


async def _count_log(
    conn: asyncpg.Connection, f: UsageFilter, lo: datetime | None, hi: datetime | None
) -> int:
    where, args = _where(f, "started_at", lo, hi)
    return int(await conn.fetchval(f"SELECT count(*) FROM usage_log{where}", *args))


def _midnight(moment: datetime, *, up: bool) -> datetime:
    utc = moment.astimezone(UTC)
    floor = datetime.combine(utc.date(), time(0), UTC)
    return floor + timedelta(days=1) if up and floor != utc else floor


async def count_usage(
    conn: asyncpg.Connection, f: UsageFilter, start: datetime | None, end: datetime | None
) -> int:
    """How many log rows match, exactly, without counting millions of them one by one: the
    whole UTC days of the window from usage_daily_models (every row inserted into usage_log is
    counted there, by the same statement), the partial days at its ends from the log. The
    window starts no earlier than the oldest partition (retention dropped the raw rows before
    it, not their rollup). A user's or key's rows are few and indexed: counted in the log (an
    index-only scan beats reading their rollup rows scattered over the heap), and so is
    ``status``, which the rollups lack. A ``source`` (the lab's history: a tenth of a million
    rows) counts from the rollup: an erasure renames the user's sources there too (0013)."""
    if f.user_id is not None or f.key_id is not None or f.status is not None:
        return await _count_log(conn, f, start, end)
    oldest = await conn.fetchval(
        "SELECT min(substring(c.relname from 12 for 8)) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'usage_log'::regclass"
    )
    if oldest is None:
        return 0
    since = datetime.strptime(oldest, "%Y%m%d").replace(tzinfo=UTC)
    lo = since if start is None else max(start, since)
    first = _midnight(lo, up=True)
    last = None if end is None else _midnight(end, up=False)
    if end is not None and last is not None and last <= first:  # no whole day inside
        return await _count_log(conn, f, start, end)
    total = await _count_log(conn, f, lo, first) if lo < first else 0
    if end is not None and last is not None and last < end:
        total += await _count_log(conn, f, last, end)
    where, args = _where(f, "day", first.date(), None if last is None else last.date())
    rollup = rollup_for(f, "day")
    days = await conn.fetchval(f"SELECT coalesce(sum(requests), 0) FROM {rollup}{where}", *args)
    return total + int(days)
