"""BYOK: a user's own provider keys, encrypted; only hints leave the service."""

from __future__ import annotations

import math

import asyncpg

from turnout_common.crypto import KeyRing, key_hint
from turnout_common.errors import NotFound, RateLimited
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
    pool: asyncpg.Pool,
    ring: KeyRing,
    actor: Actor,
    user_id: str,
    provider_ref: str,
    secret: str,
    *,
    open_only: bool = False,
) -> asyncpg.Record:
    """Adds or replaces the key; ``open_only`` (a user's own call): only for a provider an
    admin opened to BYOK. The key is used only against the provider's own base URL."""
    async with pool.acquire() as conn, conn.transaction():
        await users.get(conn, user_id)
        if open_only:
            provider = await open_provider(conn, provider_ref)
        else:
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


async def open_provider(conn: asyncpg.Connection, provider_ref: str) -> asyncpg.Record:
    """A provider a user may bring a key for (an admin opened it to BYOK); any other is
    answered like an unknown one, so a user learns nothing of closed providers."""
    try:
        provider = await providers.get(conn, provider_ref)
    except NotFound:
        provider = None
    if provider is None or not provider["byok_enabled"]:
        raise NotFound(
            f"no provider open to your own keys with id or name {provider_ref!r}"
            " (GET /api/v1/byok/providers lists them)",
            code="provider_not_open_to_byok",
            param="provider",
        )
    return provider


async def open_providers(pool: asyncpg.Pool, user_id: str) -> list[asyncpg.Record]:
    """Enabled providers open to BYOK, each saying whether ``user_id`` has a key for it."""
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT p.id AS provider_id, p.name AS provider_name, p.kind,"
                " EXISTS (SELECT 1 FROM byok_keys b WHERE b.provider_id = p.id"
                " AND b.user_id = $1) AS has_key"
                " FROM providers p WHERE p.byok_enabled AND p.enabled ORDER BY p.name",
                user_id,
            )
        )


async def take_test_slot(pool: asyncpg.Pool, user_id: str, per_minute: int) -> None:
    """Counts one key test of ``user_id`` in a one-minute sliding window kept in PostgreSQL
    (shared by every replica); the one over ``per_minute`` gets 429 with ``Retry-After``."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('key_tests:' || $1))", user_id)
        await conn.execute(
            "DELETE FROM key_tests WHERE user_id = $1"
            " AND tested_at <= clock_timestamp() - interval '1 minute'",
            user_id,
        )
        used, wait_s = await conn.fetchrow(
            "SELECT count(*), EXTRACT(EPOCH FROM min(tested_at) + interval '1 minute'"
            " - clock_timestamp()) FROM key_tests WHERE user_id = $1",
            user_id,
        )
        if used >= per_minute:
            raise RateLimited(
                f"at most {per_minute} key tests a minute per user; try again in"
                f" {math.ceil(wait_s)} s",
                retry_after=math.ceil(wait_s),
                code="key_test_rate_limited",
            )
        await conn.execute("INSERT INTO key_tests (user_id) VALUES ($1)", user_id)
