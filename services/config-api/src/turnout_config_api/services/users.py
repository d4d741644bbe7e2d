"""Users and tiers."""

from __future__ import annotations

import asyncpg

from turnout_common.errors import Conflict, NotFound
from turnout_config_api.changes import (
    Actor,
    delete_recorded,
    insert_recorded,
    next_revision,
    record_change,
    update_recorded,
)
from turnout_config_api.schemas.users import TierPut, UserCreate, UserUpdate
from turnout_config_api.services.common import new_id, patch_changes, tier_exists

_NOT_NULL = frozenset({"tier", "enabled"})


async def get(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    if row is None:
        raise NotFound(f"no user with id {user_id!r}")
    return row


async def create(pool: asyncpg.Pool, actor: Actor, body: UserCreate) -> asyncpg.Record:
    values = body.model_dump()
    values["id"] = body.id or new_id()
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT 1 FROM users WHERE id = $1", values["id"]):
            raise Conflict(
                f"user {values['id']!r} already exists; PATCH /api/v1/users/{values['id']} "
                "to change it",
                code="duplicate_id",
                param="id",
            )
        await tier_exists(conn, body.tier)
        row = await insert_recorded(conn, actor, "user", values)
    return row


async def update(
    pool: asyncpg.Pool, actor: Actor, user_id: str, body: UserUpdate
) -> asyncpg.Record:
    changes = patch_changes(body, _NOT_NULL)
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, user_id)
        if changes.get("tier"):
            await tier_exists(conn, changes["tier"])
        row = await update_recorded(conn, actor, "user", current, changes)
    return row


async def delete(pool: asyncpg.Pool, actor: Actor, user_id: str) -> None:
    """Removes the user with its virtual keys and BYOK keys (a tombstone for each)."""
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, user_id)
        await delete_recorded(conn, actor, "user", current, ["virtual_key", "byok_key"])


async def put_tier(pool: asyncpg.Pool, actor: Actor, name: str, body: TierPut) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow("SELECT * FROM tiers WHERE name = $1", name)
        rev = await next_revision(conn)
        row = await conn.fetchrow(
            "INSERT INTO tiers (name, rank, monthly_credits_usd, rpm_limit, tpm_limit, revision,"
            " max_keys, byok_fee_pct, lab_monthly_quota)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (name) DO UPDATE SET"
            " rank = EXCLUDED.rank, monthly_credits_usd = EXCLUDED.monthly_credits_usd,"
            " rpm_limit = EXCLUDED.rpm_limit, tpm_limit = EXCLUDED.tpm_limit,"
            " max_keys = EXCLUDED.max_keys, byok_fee_pct = EXCLUDED.byok_fee_pct,"
            " lab_monthly_quota = EXCLUDED.lab_monthly_quota,"
            " revision = EXCLUDED.revision, updated_at = now() RETURNING *",
            name,
            body.rank,
            body.monthly_credits_usd,
            body.rpm_limit,
            body.tpm_limit,
            rev,
            body.max_keys,
            body.byok_fee_pct,
            body.lab_monthly_quota,
        )
        assert row is not None
        await record_change(conn, actor, rev, "tier", before, row)
    return row
