"""The config snapshot (docs/CONTRACTS.md): every entity in event shape, at one revision."""

from __future__ import annotations

from typing import Any

import asyncpg

from turnout_config_api import shapes


async def snapshot(pool: asyncpg.Pool) -> dict[str, Any]:
    """Read in one REPEATABLE READ transaction; the revision is the newest committed change."""
    entities: list[dict[str, Any]] = []
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        revision: int = await conn.fetchval("SELECT coalesce(max(revision), 0) FROM audit_log")
        for entity, (table, shape, ident) in shapes.ENTITIES.items():
            for row in await conn.fetch(f"SELECT * FROM {table} ORDER BY revision"):
                entities.append(
                    {
                        "revision": row["revision"],
                        "entity": entity,
                        "entity_id": ident(row),
                        "op": "upsert",
                        "data": shape(row),
                    }
                )
    return {"revision": revision, "entities": entities}
