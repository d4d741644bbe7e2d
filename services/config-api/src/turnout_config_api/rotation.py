"""``turnout keys rotate``: re-encrypt every stored secret under the newest key.

Works in small transactions (one row each, re-read under a row lock so a concurrent
update is never lost), so the API keeps serving; each re-encrypted entity is published
again (new revision, audit entry) so consumers hold the new ciphertext.
"""

from __future__ import annotations

import asyncpg

from turnout_common.crypto import KeyRing
from turnout_common.db import create_pool
from turnout_common.events import ConfigEntity
from turnout_config_api.changes import Actor, next_revision, record_change
from turnout_config_api.services.common import update_row
from turnout_config_api.shapes import ENTITIES

ACTOR = Actor("system:key-rotation")


async def _rotate(pool: asyncpg.Pool, ring: KeyRing, entity: ConfigEntity, key: list[str]) -> int:
    """Re-encrypt the ``entity`` rows (identified by the ``key`` columns) that hold a secret
    not under the newest key; returns how many."""
    table, cols = ENTITIES[entity][0], ", ".join(key)
    async with pool.acquire() as conn:
        refs = await conn.fetch(
            f"SELECT {cols} FROM {table} WHERE api_key_encrypted IS NOT NULL ORDER BY {cols}"
        )
    done = 0
    for ref in refs:
        where = dict(ref.items())
        conds = " AND ".join(f"{col} = ${i}" for i, col in enumerate(where, 1))
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"SELECT * FROM {table} WHERE {conds} FOR UPDATE", *ref)
            secret = row["api_key_encrypted"] if row is not None else None
            if row is None or secret is None or ring.is_current(secret):
                continue
            rev = await next_revision(conn)
            new = await update_row(
                conn, table, where, {"api_key_encrypted": ring.rotate(secret)}, rev
            )
            await record_change(conn, ACTOR, rev, entity, row, new, "rotate_key")
            done += 1
    return done


async def rotate_pool(pool: asyncpg.Pool, ring: KeyRing) -> int:
    providers = await _rotate(pool, ring, "provider", ["id"])
    return providers + await _rotate(pool, ring, "byok_key", ["user_id", "provider_id"])


async def rotate_all(dsn: str, ring: KeyRing) -> int:
    """Re-encrypt provider and BYOK keys not yet under the newest key; returns how many."""
    pool = await create_pool(dsn, schema="config", min_size=1, max_size=2)
    try:
        return await rotate_pool(pool, ring)
    finally:
        await pool.close()
