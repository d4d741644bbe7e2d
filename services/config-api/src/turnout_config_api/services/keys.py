"""Virtual keys (hash only; the secret is returned once) and minted admin tokens."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import asyncpg

from turnout_common.auth import token_hash
from turnout_common.crypto import hash_virtual_key, key_hint, new_virtual_key
from turnout_common.errors import NotFound, ValidationFailed
from turnout_config_api import shapes
from turnout_config_api.changes import Actor, next_revision, record
from turnout_config_api.schemas.keys import AdminTokenCreate, KeyCreate, KeyUpdate
from turnout_config_api.services.common import insert_row, new_id, reject_nulls, update_row

ADMIN_TOKEN_PREFIX = "tk-admin-"  # noqa: S105 - a prefix, not a secret


async def get(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM virtual_keys WHERE id = $1", key_id)
    if row is None:
        raise NotFound(f"no key with id {key_id!r}")
    return row


def _future(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise ValidationFailed(
            "expires_at needs a timezone (e.g. 2030-01-01T00:00:00Z)", param="expires_at"
        )
    if expires_at <= datetime.now(UTC):
        raise ValidationFailed("expires_at is in the past", param="expires_at")


async def create(pool: asyncpg.Pool, actor: Actor, body: KeyCreate) -> tuple[asyncpg.Record, str]:
    """Returns the row and the secret (to show once)."""
    _future(body.expires_at)
    secret = new_virtual_key()
    values = body.model_dump()
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM users WHERE id = $1", body.user_id):
            raise ValidationFailed(
                f"no user {body.user_id!r}: create it with POST /api/v1/users first",
                param="user_id",
            )
        rev = await next_revision(conn)
        row = await insert_row(
            conn,
            "virtual_keys",
            {
                "id": new_id(),
                **values,
                "key_hash": hash_virtual_key(secret),
                "key_hint": key_hint(secret),
                "revision": rev,
            },
        )
        await record(
            conn,
            actor,
            revision=rev,
            entity="virtual_key",
            entity_id=row["id"],
            action="create",
            before=None,
            after=shapes.virtual_key(row),
        )
    return row, secret


async def update(pool: asyncpg.Pool, actor: Actor, key_id: str, body: KeyUpdate) -> asyncpg.Record:
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, frozenset({"name"}))
    if changes.get("expires_at") is not None:
        _future(changes["expires_at"])
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, key_id)
        rev = await next_revision(conn)
        row = await update_row(conn, "virtual_keys", {"id": key_id}, changes, rev)
        await record(
            conn,
            actor,
            revision=rev,
            entity="virtual_key",
            entity_id=key_id,
            action="update",
            before=shapes.virtual_key(current),
            after=shapes.virtual_key(row),
        )
    return row


async def revoke(pool: asyncpg.Pool, actor: Actor, key_id: str) -> asyncpg.Record:
    """DELETE = revoke: the row stays (usage refers to it); the event says ``revoked: true``."""
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, key_id)
        if current["revoked"]:
            return current
        rev = await next_revision(conn)
        row = await update_row(conn, "virtual_keys", {"id": key_id}, {"revoked": True}, rev)
        await record(
            conn,
            actor,
            revision=rev,
            entity="virtual_key",
            entity_id=key_id,
            action="revoke",
            before=shapes.virtual_key(current),
            after=shapes.virtual_key(row),
        )
    return row


async def mint_admin_token(
    pool: asyncpg.Pool, actor: Actor, body: AdminTokenCreate
) -> tuple[asyncpg.Record, str]:
    secret = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        rev = await next_revision(conn)
        row = await insert_row(
            conn,
            "admin_tokens",
            {
                "id": new_id(),
                "name": body.name,
                "token_hash": token_hash(secret),
                "created_by": actor.name,
                "revision": rev,
            },
        )
        await record(
            conn,
            actor,
            revision=rev,
            entity="admin_token",
            entity_id=row["id"],
            action="create",
            before=None,
            after=shapes.admin_token(row),
        )
    return row, secret


async def revoke_admin_token(pool: asyncpg.Pool, actor: Actor, token_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow("SELECT * FROM admin_tokens WHERE id = $1", token_id)
        if current is None:
            raise NotFound(f"no admin token with id {token_id!r}")
        rev = await next_revision(conn)
        row = await update_row(
            conn, "admin_tokens", {"id": token_id}, {"revoked": True}, rev, touch=False
        )
        await record(
            conn,
            actor,
            revision=rev,
            entity="admin_token",
            entity_id=token_id,
            action="revoke",
            before=shapes.admin_token(current),
            after=shapes.admin_token(row),
        )
    return row
