"""``turnout keys rotate``: re-encrypt every stored secret under the newest key.

Works in small transactions (one row each, re-read under a row lock so a concurrent
update is never lost), so the API keeps serving; each re-encrypted entity is published
again (new revision, audit entry) so consumers hold the new ciphertext.
"""

from __future__ import annotations

import asyncpg

from turnout_common.crypto import KeyRing
from turnout_common.db import create_pool
from turnout_config_api import shapes
from turnout_config_api.changes import Actor, next_revision, record

ACTOR = Actor("system:key-rotation")


async def _rotate_providers(pool: asyncpg.Pool, ring: KeyRing) -> int:
    done = 0
    async with pool.acquire() as conn:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM providers WHERE api_key_encrypted IS NOT NULL ORDER BY id"
            )
        ]
    for pid in ids:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM providers WHERE id = $1 FOR UPDATE", pid)
            if row is None or row["api_key_encrypted"] is None:
                continue
            if ring.is_current(row["api_key_encrypted"]):
                continue
            rev = await next_revision(conn)
            new = await conn.fetchrow(
                "UPDATE providers SET api_key_encrypted = $2, revision = $3, updated_at = now()"
                " WHERE id = $1 RETURNING *",
                pid,
                ring.rotate(row["api_key_encrypted"]),
                rev,
            )
            assert new is not None
            await record(
                conn,
                ACTOR,
                revision=rev,
                entity="provider",
                entity_id=pid,
                action="rotate_key",
                before=shapes.provider(row),
                after=shapes.provider(new),
            )
            done += 1
    return done


async def _rotate_byok(pool: asyncpg.Pool, ring: KeyRing) -> int:
    done = 0
    async with pool.acquire() as conn:
        pairs = [
            (r["user_id"], r["provider_id"])
            for r in await conn.fetch(
                "SELECT user_id, provider_id FROM byok_keys ORDER BY user_id, provider_id"
            )
        ]
    for user_id, provider_id in pairs:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM byok_keys WHERE user_id = $1 AND provider_id = $2 FOR UPDATE",
                user_id,
                provider_id,
            )
            if row is None or ring.is_current(row["api_key_encrypted"]):
                continue
            rev = await next_revision(conn)
            new = await conn.fetchrow(
                "UPDATE byok_keys SET api_key_encrypted = $3, revision = $4, updated_at = now()"
                " WHERE user_id = $1 AND provider_id = $2 RETURNING *",
                user_id,
                provider_id,
                ring.rotate(row["api_key_encrypted"]),
                rev,
            )
            assert new is not None
            await record(
                conn,
                ACTOR,
                revision=rev,
                entity="byok_key",
                entity_id=shapes.byok_entity_id(new),
                action="rotate_key",
                before=shapes.byok_key(row),
                after=shapes.byok_key(new),
            )
            done += 1
    return done


async def rotate_pool(pool: asyncpg.Pool, ring: KeyRing) -> int:
    return await _rotate_providers(pool, ring) + await _rotate_byok(pool, ring)


async def rotate_all(dsn: str, ring: KeyRing) -> int:
    """Re-encrypt provider and BYOK keys not yet under the newest key; returns how many."""
    pool = await create_pool(dsn, schema="config", min_size=1, max_size=2)
    try:
        return await rotate_pool(pool, ring)
    finally:
        await pool.close()
