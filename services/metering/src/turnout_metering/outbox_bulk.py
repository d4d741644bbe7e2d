"""Many outbox rows in one statement (the per-row ``enqueue`` costs a round trip each).

Writes the same table and NOTIFY channel as :func:`turnout_common.outbox.enqueue`, so the
shared :class:`~turnout_common.outbox.OutboxRelay` sends these rows like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from turnout_common.db import check_schema


async def enqueue_many(
    conn: asyncpg.Connection,
    schema: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None]],
) -> int:
    """Insert ``(key, payload)`` rows for ``topic`` inside the caller's transaction."""
    if not records:
        return 0
    s = check_schema(schema)
    await conn.execute(
        f"INSERT INTO {s}.outbox (topic, key, payload)"
        " SELECT $1, k, p FROM unnest($2::bytea[], $3::bytea[]) WITH ORDINALITY AS t(k, p, i)"
        " ORDER BY i",
        topic,
        [k for k, _ in records],
        [p for _, p in records],
    )
    await conn.execute("SELECT pg_notify($1, '')", f"{s}_outbox")
    return len(records)
