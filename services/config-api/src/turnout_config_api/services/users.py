"""Users and tiers."""

from __future__ import annotations

import asyncpg

from turnout_common.errors import Conflict, NotFound
from turnout_config_api import shapes
from turnout_config_api.changes import Actor, next_revision, record, record_deletes
from turnout_config_api.schemas.users import TierPut, UserCreate, UserUpdate
from turnout_config_api.services.common import (
    insert_row,
    new_id,
    reject_nulls,
    tier_exists,
    update_row,
)

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
        rev = await next_revision(conn)
        row = await insert_row(conn, "users", {**values, "revision": rev})
        await record(
            conn,
            actor,
            revision=rev,
            entity="user",
            entity_id=row["id"],
            action="create",
            before=None,
            after=shapes.user(row),
        )
    return row


async def update(
    pool: asyncpg.Pool, actor: Actor, user_id: str, body: UserUpdate
) -> asyncpg.Record:
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, _NOT_NULL)
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, user_id)
        if changes.get("tier"):
            await tier_exists(conn, changes["tier"])
        rev = await next_revision(conn)
        row = await update_row(conn, "users", {"id": user_id}, changes, rev)
        await record(
            conn,
            actor,
            revision=rev,
            entity="user",
            entity_id=user_id,
            action="update",
            before=shapes.user(current),
            after=shapes.user(row),
        )
    return row


async def delete(pool: asyncpg.Pool, actor: Actor, user_id: str) -> None:
    """Removes the user with its virtual keys and BYOK keys (a tombstone for each)."""
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, user_id)
        rev = await next_revision(conn)
        keys = await conn.fetch("DELETE FROM virtual_keys WHERE user_id = $1 RETURNING *", user_id)
        rev = await record_deletes(
            conn, actor, rev, "virtual_key", keys, lambda k: k["id"], shapes.virtual_key
        )
        byok = await conn.fetch("DELETE FROM byok_keys WHERE user_id = $1 RETURNING *", user_id)
        rev = await record_deletes(
            conn, actor, rev, "byok_key", byok, shapes.byok_entity_id, shapes.byok_key
        )
        await conn.execute("DELETE FROM users WHERE id = $1", user_id)
        await record(
            conn,
            actor,
            revision=rev,
            entity="user",
            entity_id=user_id,
            action="delete",
            before=shapes.user(current),
            after=None,
        )


async def put_tier(pool: asyncpg.Pool, actor: Actor, name: str, body: TierPut) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow("SELECT * FROM tiers WHERE name = $1", name)
        rev = await next_revision(conn)
        row = await conn.fetchrow(
            "INSERT INTO tiers (name, rank, monthly_credits_usd, rpm_limit, tpm_limit, revision)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET"
            " rank = EXCLUDED.rank, monthly_credits_usd = EXCLUDED.monthly_credits_usd,"
            " rpm_limit = EXCLUDED.rpm_limit, tpm_limit = EXCLUDED.tpm_limit,"
            " revision = EXCLUDED.revision, updated_at = now() RETURNING *",
            name,
            body.rank,
            body.monthly_credits_usd,
            body.rpm_limit,
            body.tpm_limit,
            rev,
        )
        assert row is not None
        await record(
            conn,
            actor,
            revision=rev,
            entity="tier",
            entity_id=name,
            action="update" if before else "create",
            before=shapes.tier(before) if before else None,
            after=shapes.tier(row),
        )
    return row
