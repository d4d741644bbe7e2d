"""The write path: one transaction per batch of usage records, idempotent by request id.

COPY the batch into a temp table, ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into the
append-only log, and only the rows actually inserted (``RETURNING``, in one statement) update the
daily rollup, the latest name per provider id, spend per period and the prepaid-credit ledger.
A redelivered or duplicated record therefore changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from turnout_common.events import UsageEvent
from turnout_metering.config_state import Subject
from turnout_metering.usage.latency import bucket_index_sql, histogram_sql

COLUMNS = (
    "seq", "request_id", "event_id", "started_at", "period", "user_id", "key_id", "purpose",
    "requested_model", "model", "upstream_model", "provider_id", "provider", "deployment_id",
    "byok", "input_tokens", "output_tokens", "cached_tokens", "estimated", "cost_usd",
    "billed_usd", "latency_ms", "ttft_ms", "status", "outcome", "error_code", "stream",
    "fallbacks", "attempts", "source", "route", "power_level", "task_type", "api",
)  # fmt: skip
_LOG_COLUMNS = ", ".join(c for c in COLUMNS if c not in ("seq", "attempts"))

TEMP_DDL = """
CREATE TEMP TABLE IF NOT EXISTS usage_in (
    seq integer, request_id text, event_id uuid, started_at timestamptz, period text,
    user_id text, key_id text, purpose text, requested_model text, model text,
    upstream_model text, provider_id text, provider text, deployment_id text, byok boolean,
    input_tokens bigint, output_tokens bigint, cached_tokens bigint, estimated boolean,
    cost_usd numeric, billed_usd numeric, latency_ms double precision, ttft_ms double precision,
    status integer,
    outcome text, error_code text, stream boolean, fallbacks integer, attempts text, source text,
    route text, power_level text, task_type text, api text
) ON COMMIT DELETE ROWS;
"""

_NEW_COLUMNS = (
    "request_id, started_at, period, user_id, key_id, model, provider_id, provider, source,"
    " outcome, input_tokens, output_tokens, cached_tokens, cost_usd,"
    " coalesce(billed_usd, cost_usd) AS billed_usd, latency_ms"
)
# The rollups' keys (migration 0002 rebuilt usage_daily's rows from usage_log with the same
# aggregate): a provider's id and the name it was recorded under are both kept.
_DIMS = ("day", "user_id", "key_id", "model", "provider_id", "provider", "source", "outcome")
# usage_daily_models: the same without users and keys (summaries of all usage)
_MODEL_DIMS = ("day", "model", "provider_id", "provider", "source", "outcome")
_SUMS = (
    "requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost_usd",
    "billed_usd", "latency_sum_ms",
)  # fmt: skip


def _rollup(table: str, dims: tuple[str, ...]) -> str:
    """``INSERT`` the rows of ``ins`` into a daily rollup keyed by ``dims``: a key it already
    has adds to its row (the sums, and the latency histograms bucket by bucket)."""
    keys = ", ".join(dims)
    by = ", ".join(str(i) for i in range(1, len(dims) + 1))
    values = ", ".join(
        "(started_at AT TIME ZONE 'UTC')::date" if d == "day"
        else d if d in ("source", "outcome")
        else f"coalesce({d}, '')"
        for d in dims
    )  # fmt: skip
    adds = "".join(f"\n        {c} = d.{c} + EXCLUDED.{c}," for c in _SUMS)
    return f"""
    INSERT INTO {table} AS d ({keys}, {", ".join(_SUMS)}, lat_hist)
    SELECT {values}, count(*), count(*) FILTER (WHERE outcome <> 'success'), sum(input_tokens),
           sum(output_tokens), sum(cached_tokens), sum(cost_usd), sum(billed_usd),
           sum(latency_ms), {histogram_sql("b")}
    FROM (SELECT *, {bucket_index_sql("latency_ms")} AS b FROM ins) n
    GROUP BY {by} ORDER BY {by}
    ON CONFLICT ({keys}) DO UPDATE SET{adds}
        lat_hist = (SELECT array_agg(x + y ORDER BY i)
                    FROM unnest(d.lat_hist, EXCLUDED.lat_hist) WITH ORDINALITY AS t(x, y, i))"""


# One statement, one snapshot: every derived table is fed from ``ins``, the rows that were
# actually inserted (a duplicate request id inserts nothing, so it changes nothing).
WRITE = f"""
WITH ins AS (
    INSERT INTO usage_log ({_LOG_COLUMNS}, attempts)
    SELECT DISTINCT ON (request_id) {_LOG_COLUMNS}, attempts::jsonb
    FROM usage_in ORDER BY request_id, seq
    ON CONFLICT (request_id, started_at) DO NOTHING
    RETURNING {_NEW_COLUMNS}
), rollup AS ({_rollup("usage_daily", _DIMS)}
), models AS ({_rollup("usage_daily_models", _MODEL_DIMS)}
), named AS (  -- per provider id, the name of its latest record (ties: the greatest name)
    INSERT INTO provider_names AS p (provider_id, name, seen_at)
    SELECT DISTINCT ON (provider_id) provider_id, provider, started_at FROM ins
    WHERE provider_id <> '' AND provider <> ''
    ORDER BY provider_id, started_at DESC, provider DESC
    ON CONFLICT (provider_id) DO UPDATE SET name = EXCLUDED.name, seen_at = EXCLUDED.seen_at
    WHERE (EXCLUDED.seen_at, EXCLUDED.name) > (p.seen_at, p.name)
), spent AS (
    INSERT INTO spend AS s (subject_type, subject_id, period, spent_usd, requests, lab_requests)
    SELECT t, id, period, sum(cost), count(*), count(*) FILTER (WHERE lab) FROM (
        SELECT 'user' AS t, user_id AS id, period, billed_usd AS cost,
               source = 'lab' AND outcome <> 'rejected' AS lab
        FROM ins WHERE user_id IS NOT NULL
        UNION ALL
        SELECT 'key', key_id, period, billed_usd, source = 'lab' AND outcome <> 'rejected'
        FROM ins WHERE key_id IS NOT NULL
    ) x
    GROUP BY t, id, period ORDER BY t, id, period
    ON CONFLICT (subject_type, subject_id, period) DO UPDATE SET
        spent_usd = s.spent_usd + EXCLUDED.spent_usd,
        requests = s.requests + EXCLUDED.requests,
        lab_requests = s.lab_requests + EXCLUDED.lab_requests,
        updated_at = now()
    RETURNING subject_type, subject_id
), debit AS (  -- prepaid users (with a credit account): one debit entry per batch
    SELECT n.user_id, sum(n.billed_usd) AS cost, count(*) AS n
    FROM ins n JOIN credit_accounts a ON a.user_id = n.user_id
    GROUP BY n.user_id HAVING sum(n.billed_usd) > 0
), ledger AS (
    INSERT INTO credit_ledger (user_id, kind, amount_usd, period, reason, requests)
    SELECT user_id, 'debit', -cost, $1, 'usage', n FROM debit ORDER BY user_id
), balance AS (
    UPDATE credit_accounts a SET balance_usd = a.balance_usd - debit.cost, updated_at = now()
    FROM debit WHERE a.user_id = debit.user_id
)
SELECT 'r' AS kind, request_id AS a, NULL AS b FROM ins
UNION ALL
SELECT 's', subject_type, subject_id FROM spent
"""


@dataclass(frozen=True, slots=True)
class BatchResult:
    received: int
    inserted: list[UsageEvent]
    touched: set[Subject]


def _period(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.utcoffset() else moment
    return f"{utc.year:04d}-{utc.month:02d}"


def _row(seq: int, e: UsageEvent) -> tuple[Any, ...]:
    attempts = (
        orjson.dumps([a.model_dump(mode="json") for a in e.attempts]) if e.attempts else b"[]"
    )
    return (
        seq, e.request_id, e.event_id, e.started_at, _period(e.started_at), e.user_id,
        e.key_id, e.purpose, e.requested_model, e.model, e.upstream_model, e.provider_id,
        e.provider, e.deployment_id, e.byok, e.input_tokens, e.output_tokens, e.cached_tokens,
        e.estimated, e.cost_usd, e.billed_usd, e.latency_ms, e.ttft_ms, e.status, e.outcome,
        e.error_code, e.stream, e.fallbacks,
        attempts.decode(), e.source, e.route, e.power_level, e.task_type, e.api,
    )  # fmt: skip


async def write_batch(
    conn: asyncpg.Connection, events: Sequence[UsageEvent], *, period: str
) -> BatchResult:
    """Inside the caller's transaction: log the new records and update derived tables."""
    await conn.execute(TEMP_DDL)
    await conn.copy_records_to_table(
        "usage_in", records=[_row(i, e) for i, e in enumerate(events)], columns=COLUMNS
    )
    rows = await conn.fetch(WRITE, period)
    new_ids = {r[1] for r in rows if r[0] == "r"}
    if not new_ids:
        return BatchResult(len(events), [], set())
    touched = {(r[1], r[2]) for r in rows if r[0] == "s"}
    first: dict[str, UsageEvent] = {}
    for e in events:
        if e.request_id in new_ids:
            first.setdefault(e.request_id, e)
    return BatchResult(len(events), list(first.values()), touched)
