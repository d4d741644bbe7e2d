"""Admin overrides: force a provider ``up`` or ``down`` with a reason and an optional expiry.

Set, clear and expiry each commit with their ``override_log`` row (the audit) and a health
event in the outbox, so the router honours the override like any state change: ``down`` is
``auto_disabled`` (the router skips it, system providers too), ``up`` is healthy with a closed
circuit. The measured state goes on being probed and stored meanwhile (the service publishes
none of it for an overridden provider); clearing or expiry publishes it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg

from turnout_common.errors import NotFound
from turnout_common.events import HealthEvent
from turnout_common.outbox import enqueue
from turnout_common.topics import HEALTH

Forced = Literal["up", "down"]
_ACTIVE = "(expires_at IS NULL OR expires_at > now())"


async def active(conn: asyncpg.Connection, provider_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT * FROM overrides WHERE provider_id = $1 AND {_ACTIVE}", provider_id
    )


async def all_active(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(f"SELECT * FROM overrides WHERE {_ACTIVE}")
    return {r["provider_id"]: dict(r) for r in rows}


def forced_event(row: asyncpg.Record | dict[str, Any], latency_ms: float | None) -> HealthEvent:
    until = f" until {row['expires_at'].isoformat()}" if row["expires_at"] else ""
    reason = f"admin override ({row['actor']}): {row['status']}{until}: {row['reason']}"
    down = row["status"] == "down"
    return HealthEvent(
        provider_id=row["provider_id"],
        status="down" if down else "healthy",
        circuit="open" if down else "closed",
        latency_ms=latency_ms,
        reason=reason,
        auto_disabled=down,
    )


async def _measured(conn: asyncpg.Connection, provider_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM provider_state WHERE provider_id = $1 AND deployment_id = ''", provider_id
    )


def measured_event(provider_id: str, state: asyncpg.Record | None, why: str) -> HealthEvent:
    if state is None:
        return HealthEvent(
            provider_id=provider_id, status="unknown", reason=f"{why}; not probed yet"
        )
    return HealthEvent(
        provider_id=provider_id,
        status=state["status"],
        circuit=state["circuit"],
        latency_ms=state["latency_ms"],
        reason=f"{why}; measured: {state['reason']}",
        auto_disabled=state["auto_disabled"],
    )


async def _log(conn: asyncpg.Connection, action: str, row: asyncpg.Record, actor: str) -> None:
    await conn.execute(
        "INSERT INTO override_log (provider_id, action, status, reason, expires_at, actor)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        row["provider_id"],
        action,
        row["status"],
        row["reason"],
        row["expires_at"],
        actor,
    )


async def put(
    pool: asyncpg.Pool,
    schema: str,
    provider_id: str,
    status: Forced,
    reason: str,
    expires_at: datetime | None,
    actor: str,
) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO overrides (provider_id, status, reason, expires_at, actor)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider_id) DO UPDATE SET"
            " status = EXCLUDED.status, reason = EXCLUDED.reason,"
            " expires_at = EXCLUDED.expires_at, actor = EXCLUDED.actor, set_at = now()"
            " RETURNING *",
            provider_id,
            status,
            reason,
            expires_at,
            actor,
        )
        assert row is not None
        await _log(conn, "set", row, actor)
        state = await _measured(conn, provider_id)
        event = forced_event(row, state["latency_ms"] if state else None)
        await enqueue(conn, schema, HEALTH.name, provider_id, event.to_bytes())
    return row


async def clear(pool: asyncpg.Pool, schema: str, provider_id: str, actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"DELETE FROM overrides WHERE provider_id = $1 AND {_ACTIVE} RETURNING *", provider_id
        )
        if row is None:
            raise NotFound(f"provider {provider_id!r} has no active override")
        await _log(conn, "clear", row, actor)
        event = measured_event(
            provider_id, await _measured(conn, provider_id), f"override cleared by {actor}"
        )
        await enqueue(conn, schema, HEALTH.name, provider_id, event.to_bytes())


async def expire(pool: asyncpg.Pool, schema: str) -> list[str]:
    """Ends the overrides whose time is up (the prober's tick); their measured state goes out."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("DELETE FROM overrides WHERE expires_at <= now() RETURNING *")
        for row in rows:
            pid = row["provider_id"]
            await _log(conn, "expire", row, "system")
            event = measured_event(pid, await _measured(conn, pid), "override expired")
            await enqueue(conn, schema, HEALTH.name, pid, event.to_bytes())
    return [r["provider_id"] for r in rows]


async def log(
    conn: asyncpg.Connection, provider_id: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = "WHERE $1::text IS NULL OR provider_id = $1"
    total: int = await conn.fetchval(f"SELECT count(*) FROM override_log {where}", provider_id)
    rows = await conn.fetch(
        f"SELECT * FROM override_log {where} ORDER BY id DESC LIMIT $2 OFFSET $3",
        provider_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows], total
