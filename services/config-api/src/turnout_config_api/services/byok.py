"""BYOK: a user's own provider keys, encrypted; only hints leave the service."""

from __future__ import annotations

import asyncpg

from turnout_common.crypto import KeyRing, key_hint
from turnout_common.errors import NotFound
from turnout_config_api.changes import Actor, next_revision, record_change
from turnout_config_api.services import providers, users

_SELECT = (
    "SELECT b.*, p.name AS provider_name FROM byok_keys b JOIN providers p ON p.id = b.provider_id"
)


async def list_for(pool: asyncpg.Pool, user_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        await users.get(conn, user_id)
        return list(await conn.fetch(f"{_SELECT} WHERE b.user_id = $1 ORDER BY p.name", user_id))


async def get(conn: asyncpg.Connection, user_id: str, provider_ref: str) -> asyncpg.Record:
    provider = await providers.get(conn, provider_ref)
    row = await conn.fetchrow(
        f"{_SELECT} WHERE b.user_id = $1 AND b.provider_id = $2", user_id, provider["id"]
    )
    if row is None:
        raise NotFound(f"user {user_id!r} has no key for provider {provider['name']!r}")
    return row


async def put(
    pool: asyncpg.Pool, ring: KeyRing, actor: Actor, user_id: str, provider_ref: str, secret: str
) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        await users.get(conn, user_id)
        provider = await providers.get(conn, provider_ref)
        before = await conn.fetchrow(
            "SELECT * FROM byok_keys WHERE user_id = $1 AND provider_id = $2",
            user_id,
            provider["id"],
        )
        rev = await next_revision(conn)
        row = await conn.fetchrow(
            "INSERT INTO byok_keys (user_id, provider_id, api_key_encrypted, api_key_hint,"
            " revision) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, provider_id) DO UPDATE"
            " SET api_key_encrypted = EXCLUDED.api_key_encrypted,"
            " api_key_hint = EXCLUDED.api_key_hint,"
            " revision = EXCLUDED.revision, updated_at = now() RETURNING *",
            user_id,
            provider["id"],
            ring.encrypt(secret),
            key_hint(secret),
            rev,
        )
        assert row is not None
        await record_change(conn, actor, rev, "byok_key", before, row)
        return await get(conn, user_id, provider["id"])


async def delete(pool: asyncpg.Pool, actor: Actor, user_id: str, provider_ref: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, user_id, provider_ref)
        rev = await next_revision(conn)
        await conn.execute(
            "DELETE FROM byok_keys WHERE user_id = $1 AND provider_id = $2",
            user_id,
            current["provider_id"],
        )
        await record_change(conn, actor, rev, "byok_key", current, None)
