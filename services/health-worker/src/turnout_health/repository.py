"""SQL for schema ``health`` (the pool's search_path points at it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from turnout_health.probes import ProbeResult


@dataclass(frozen=True, slots=True)
class StateRow:
    provider_id: str
    deployment_id: str
    status: str
    circuit: str
    auto_disabled: bool
    latency_ms: float | None
    reason: str
    recent_failures: int
    opened_at: datetime | None


@dataclass(frozen=True, slots=True)
class PassiveCount:
    provider_id: str
    deployment_id: str
    requests: int
    errors: int
    latency_ms_sum: float
    latency_ms_max: float


async def insert_probe(
    conn: asyncpg.Connection, provider_id: str, result: ProbeResult, circuit: str
) -> None:
    await conn.execute(
        "INSERT INTO probe_history (provider_id, status, circuit, http_status, latency_ms, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        provider_id,
        result.status,
        circuit,
        result.http_status,
        result.latency_ms,
        result.reason,
    )


async def save_state(
    conn: asyncpg.Connection, row: StateRow, *, changed: bool, circuit_changed: bool, probed: bool
) -> None:
    await conn.execute(
        """
        INSERT INTO provider_state AS s (provider_id, status, circuit, auto_disabled, latency_ms,
            reason, recent_failures, last_probe_at, opened_at, circuit_changed_at, deployment_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN now() END, $9,
                CASE WHEN $11 THEN now() END, $12)
        ON CONFLICT (provider_id, deployment_id) DO UPDATE SET
            status = EXCLUDED.status, circuit = EXCLUDED.circuit,
            auto_disabled = EXCLUDED.auto_disabled, latency_ms = EXCLUDED.latency_ms,
            reason = EXCLUDED.reason, recent_failures = EXCLUDED.recent_failures,
            last_probe_at = CASE WHEN $8 THEN now() ELSE s.last_probe_at END,
            opened_at = EXCLUDED.opened_at,
            changed_at = CASE WHEN $10 THEN now() ELSE s.changed_at END,
            circuit_changed_at = CASE WHEN $11 THEN now() ELSE s.circuit_changed_at END
        """,
        row.provider_id,
        row.status,
        row.circuit,
        row.auto_disabled,
        row.latency_ms,
        row.reason,
        row.recent_failures,
        probed,
        row.opened_at,
        changed,
        circuit_changed,
        row.deployment_id,
    )


async def delete_state(conn: asyncpg.Connection, provider_id: str) -> None:
    await conn.execute("DELETE FROM provider_state WHERE provider_id = $1", provider_id)


async def load_states(conn: asyncpg.Connection) -> list[StateRow]:
    rows = await conn.fetch(
        "SELECT provider_id, deployment_id, status, circuit, auto_disabled, latency_ms, reason,"
        " recent_failures, opened_at FROM provider_state"
    )
    return [StateRow(**dict(r)) for r in rows]


async def list_states(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM provider_state ORDER BY provider_id, deployment_id")
    return [dict(r) for r in rows]


async def history(
    conn: asyncpg.Connection, provider_id: str, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, at, status, circuit, http_status, latency_ms, reason FROM probe_history"
        " WHERE provider_id = $1 AND ($2::bigint IS NULL OR id < $2)"
        " ORDER BY id DESC LIMIT $3",
        provider_id,
        before_id,
        limit,
    )
    return [dict(r) for r in rows]


async def purge_history(conn: asyncpg.Connection, max_age_s: float, keep: int) -> int:
    """Delete rows older than ``max_age_s`` and all but the newest ``keep`` per provider."""
    status: str = await conn.execute(
        """
        DELETE FROM probe_history WHERE at < now() - make_interval(secs => $1)
           OR id IN (SELECT id FROM (SELECT id, row_number() OVER
                     (PARTITION BY provider_id ORDER BY at DESC, id DESC) AS rn
                     FROM probe_history) t
                     WHERE t.rn > $2)
        """,
        max_age_s,
        keep,
    )
    return int(status.split()[-1])


async def add_passive(conn: asyncpg.Connection, counts: list[PassiveCount]) -> None:
    await conn.execute(
        """
        INSERT INTO passive_buckets AS b (provider_id, deployment_id, bucket, requests, errors,
            latency_ms_sum, latency_ms_max)
        SELECT p, d, date_bin('100 milliseconds', now(), timestamptz '2000-01-01'), r, e, s, m
          FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::float8[], $6::float8[])
               AS u(p, d, r, e, s, m)
        ON CONFLICT (provider_id, deployment_id, bucket) DO UPDATE SET
            requests = b.requests + EXCLUDED.requests, errors = b.errors + EXCLUDED.errors,
            latency_ms_sum = b.latency_ms_sum + EXCLUDED.latency_ms_sum,
            latency_ms_max = greatest(b.latency_ms_max, EXCLUDED.latency_ms_max)
        """,
        [c.provider_id for c in counts],
        [c.deployment_id for c in counts],
        [c.requests for c in counts],
        [c.errors for c in counts],
        [c.latency_ms_sum for c in counts],
        [c.latency_ms_max for c in counts],
    )


async def passive_window(
    conn: asyncpg.Connection, window_s: float, *, per_deployment: bool, baseline: bool = True
) -> list[PassiveCount]:
    """Counters over the window per deployment (``per_deployment``) or per provider
    (``deployment_id = ""``). With ``baseline``, buckets (100 ms) that ended before the
    target's last circuit change are ignored, so old errors cannot re-open a closed circuit
    (the bucket holding the change counts: trial traffic right after it must not be lost)."""
    deployment = "b.deployment_id" if per_deployment else "''"
    rows = await conn.fetch(
        f"""
        SELECT b.provider_id, {deployment} AS deployment_id, sum(b.requests)::int AS requests,
               sum(b.errors)::int AS errors, sum(b.latency_ms_sum) AS latency_ms_sum,
               max(b.latency_ms_max) AS latency_ms_max
          FROM passive_buckets b LEFT JOIN provider_state s
            ON s.provider_id = b.provider_id AND s.deployment_id = {deployment}
         WHERE b.bucket >= now() - make_interval(secs => $1)
           AND ($3 = false OR s.circuit_changed_at IS NULL
                OR b.bucket > s.circuit_changed_at - interval '100 milliseconds')
           AND ($2 = false OR b.deployment_id <> '')
         GROUP BY 1, 2
        """,
        window_s,
        per_deployment,
        baseline,
    )
    return [PassiveCount(**dict(r)) for r in rows]


async def purge_passive(conn: asyncpg.Connection, older_than_s: float) -> int:
    status: str = await conn.execute(
        "DELETE FROM passive_buckets WHERE bucket < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return int(status.split()[-1])
