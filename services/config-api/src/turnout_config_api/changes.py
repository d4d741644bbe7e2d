"""One config change = row(s) + audit entry + ConfigEvent (outbox), in the caller's transaction.

Writers take a transaction-scoped advisory lock before drawing a revision, so revisions are
handed out in commit order: the outbox (and so the topic) sees them strictly increasing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from turnout_common.events import ConfigEntity, ConfigEvent
from turnout_common.outbox import enqueue
from turnout_common.topics import CONFIG
from turnout_config_api import shapes
from turnout_config_api.services.common import insert_row, update_row

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


async def record_change(
    conn: asyncpg.Connection,
    actor: Actor,
    revision: int,
    entity: ConfigEntity,
    before: asyncpg.Record | None,
    after: asyncpg.Record | None,
    action: str | None = None,
) -> ConfigEvent:
    """:func:`record` for a row's images, shaped and keyed by ``shapes.ENTITIES``; the action
    is ``create`` / ``update`` / ``delete`` by which images there are, unless given."""
    _, shape, key = shapes.ENTITIES[entity]
    row = after if after is not None else before
    assert row is not None
    if action is None:
        action = "create" if before is None else "update" if after is not None else "delete"
    return await record(
        conn,
        actor,
        revision=revision,
        entity=entity,
        entity_id=key(row),
        action=action,
        before=shape(before) if before is not None else None,
        after=shape(after) if after is not None else None,
    )


async def record_deletes(
    conn: asyncpg.Connection,
    actor: Actor,
    revision: int,
    entity: ConfigEntity,
    rows: Iterable[asyncpg.Record],
) -> int:
    """Audit and tombstone each cascade-deleted row, one revision each; returns the next
    revision to use."""
    for row in rows:
        await record_change(conn, actor, revision, entity, row, None)
        revision = await next_revision(conn)
    return revision


async def insert_recorded(
    conn: asyncpg.Connection, actor: Actor, entity: ConfigEntity, values: dict[str, Any]
) -> asyncpg.Record:
    """Insert an ``entity`` row at the next revision, audited and published (``create``)."""
    rev = await next_revision(conn)
    row = await insert_row(conn, shapes.ENTITIES[entity][0], {**values, "revision": rev})
    await record_change(conn, actor, rev, entity, None, row)
    return row


async def update_recorded(
    conn: asyncpg.Connection,
    actor: Actor,
    entity: ConfigEntity,
    current: asyncpg.Record,
    changes: dict[str, Any],
    *,
    action: str = "update",
    touch: bool = True,
) -> asyncpg.Record:
    """Apply ``changes`` to the ``entity`` row ``current`` (by id) at the next revision,
    audited with before/after and published."""
    rev = await next_revision(conn)
    table = shapes.ENTITIES[entity][0]
    row = await update_row(conn, table, {"id": current["id"]}, changes, rev, touch=touch)
    await record_change(conn, actor, rev, entity, current, row, action)
    return row


async def delete_recorded(
    conn: asyncpg.Connection,
    actor: Actor,
    entity: ConfigEntity,
    current: asyncpg.Record,
    cascade: Iterable[ConfigEntity] = (),
) -> None:
    """Delete the ``entity`` row ``current`` (by id), after the rows of each ``cascade``
    entity whose ``<entity>_id`` refers to it; each is audited and tombstoned, one revision
    each."""
    rev = await next_revision(conn)
    for child in cascade:
        rows = await conn.fetch(
            f"DELETE FROM {shapes.ENTITIES[child][0]} WHERE {entity}_id = $1 RETURNING *",
            current["id"],
        )
        rev = await record_deletes(conn, actor, rev, child, rows)
    await conn.execute(f"DELETE FROM {shapes.ENTITIES[entity][0]} WHERE id = $1", current["id"])
    await record_change(conn, actor, rev, entity, current, None)
