"""SQL of the alerts: per-user webhooks, and the deliveries (pending, delivered, dead)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from turnout_common.events import AlertEvent
from turnout_metering.alerts.webhooks import Target

WEBHOOK_COLUMNS = "id, user_id, url, format, alerts, created_by, created_at"
DELIVERY_COLUMNS = (
    "id, event_id, webhook, alert, state, attempts, next_at, last_status, last_error,"
    " created_at, finished_at"
)


async def add_webhook(
    conn: asyncpg.Connection,
    *,
    user_id: str | None,
    url: str,
    secret: str,
    fmt: str,
    alerts: Sequence[str] | None,
    actor: str,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "INSERT INTO alert_webhooks (id, user_id, url, secret, format, alerts, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {WEBHOOK_COLUMNS}",
        "wh_" + secrets.token_hex(8),
        user_id,
        url,
        secret,
        fmt,
        list(alerts) if alerts is not None else None,
        actor,
    )
    return row


async def list_webhooks(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(f"SELECT {WEBHOOK_COLUMNS} FROM alert_webhooks ORDER BY created_at, id")
    )


async def delete_webhook(conn: asyncpg.Connection, webhook_id: str) -> bool:
    done: str = await conn.execute("DELETE FROM alert_webhooks WHERE id = $1", webhook_id)
    return done.endswith(" 1")


async def stored_targets(conn: asyncpg.Connection) -> list[Target]:
    rows = await conn.fetch("SELECT id, user_id, url, secret, format, alerts FROM alert_webhooks")
    return [
        Target(
            r["id"],
            r["url"],
            r["secret"],
            r["format"],
            user_id=r["user_id"],
            alerts=tuple(r["alerts"]) if r["alerts"] is not None else None,
        )
        for r in rows
    ]


async def enqueue(
    conn: asyncpg.Connection, alerts: Sequence[AlertEvent], targets: Sequence[Target]
) -> int:
    """One pending delivery per (alert, webhook that wants it); a redelivered alert adds none."""
    rows = [
        (a.event_id, t.id, a.alert, a.model_dump_json())
        for a in alerts
        for t in targets
        if t.wants(a)
    ]
    if not rows:
        return 0
    result: str = await conn.execute(
        "INSERT INTO alert_deliveries (event_id, webhook, alert, payload)"
        " SELECT e, w, a, p::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])"
        " AS t(e, w, a, p)"
        " ON CONFLICT (event_id, webhook) DO NOTHING",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )
    return int(result.rsplit(" ", 1)[1])


async def claim_due(
    conn: asyncpg.Connection, now: datetime, lease: timedelta, limit: int
) -> list[asyncpg.Record]:
    """Pending deliveries that are due, leased to this process (another replica skips them
    until the lease ends, so a crash mid-send only delays a delivery)."""
    return list(
        await conn.fetch(
            "UPDATE alert_deliveries d SET next_at = $2 FROM ("
            "  SELECT id FROM alert_deliveries WHERE state = 'pending' AND next_at <= $1"
            "  ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) due"
            " WHERE d.id = due.id RETURNING d.id, d.webhook, d.payload::text AS payload,"
            " d.attempts",
            now,
            now + lease,
            limit,
        )
    )


async def finish(
    conn: asyncpg.Connection,
    delivery_id: int,
    *,
    state: str,
    attempts: int,
    next_at: datetime,
    status: int | None,
    error: str | None,
) -> None:
    await conn.execute(
        "UPDATE alert_deliveries SET state = $2, attempts = $3, next_at = $4, last_status = $5,"
        " last_error = $6, finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END"
        " WHERE id = $1",
        delivery_id,
        state,
        attempts,
        next_at,
        status,
        error,
    )


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    when: datetime | None = await conn.fetchval(
        "SELECT min(next_at) FROM alert_deliveries WHERE state = 'pending'"
    )
    return when


async def page(
    conn: asyncpg.Connection, state: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    where, args = ("WHERE state = $1", [state]) if state else ("", [])
    total = await conn.fetchval(f"SELECT count(*) FROM alert_deliveries {where}", *args)
    n = len(args)
    rows = await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM alert_deliveries {where}"
        f" ORDER BY id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return int(total), [dict(r) for r in rows]
