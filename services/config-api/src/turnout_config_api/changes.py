"""One config change = row(s) + audit entry + ConfigEvent (outbox), in the caller's transaction.

Writers take a transaction-scoped advisory lock before drawing a revision, so revisions are
handed out in commit order: the outbox (and so the topic) sees them strictly increasing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from turnout_common.events import ConfigEntity, ConfigEvent
from turnout_common.outbox import enqueue
from turnout_common.topics import CONFIG
from turnout_config_api import shapes

SCHEMA = "config"
_WRITE_LOCK = 0x7475726E6F7574  # "turnout": serialises config writers


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, and under which request id."""

    name: str
    request_id: str | None = None


async def next_revision(conn: asyncpg.Connection) -> int:
    """Lock config writes for this transaction and draw the next revision."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _WRITE_LOCK)
    rev: int = await conn.fetchval("SELECT nextval('config_revision')")
    return rev


async def record(
    conn: asyncpg.Connection,
    actor: Actor,
    *,
    revision: int,
    entity: ConfigEntity,
    entity_id: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> ConfigEvent:
    """Write the audit entry and enqueue the event (``after=None`` publishes a tombstone)."""
    event = ConfigEvent(
        revision=revision,
        entity=entity,
        entity_id=entity_id,
        op="upsert" if after is not None else "delete",
        data=after,
    )
    await enqueue(conn, SCHEMA, CONFIG.name, event.key, event.to_bytes())
    m_before, m_after = shapes.masked(before), shapes.masked(after)
    await conn.execute(
        "INSERT INTO audit_log (actor, action, entity, entity_id, before, after, diff,"
        " request_id, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        actor.name,
        action,
        entity,
        entity_id,
        m_before,
        m_after,
        shapes.diff(m_before, m_after),
        actor.request_id,
        revision,
    )
    return event


async def record_deletes(
    conn: asyncpg.Connection,
    actor: Actor,
    revision: int,
    entity: ConfigEntity,
    rows: Iterable[asyncpg.Record],
    entity_id: Callable[[asyncpg.Record], str],
    shape: Callable[[asyncpg.Record], dict[str, Any]],
) -> int:
    """Audit and tombstone each cascade-deleted row, one revision each; returns the next
    revision to use."""
    for row in rows:
        await record(
            conn,
            actor,
            revision=revision,
            entity=entity,
            entity_id=entity_id(row),
            action="delete",
            before=shape(row),
            after=None,
        )
        revision = await next_revision(conn)
    return revision
