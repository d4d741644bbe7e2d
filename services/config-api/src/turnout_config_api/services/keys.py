"""Virtual keys (hash only; the secret is returned once) and minted admin tokens."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import asyncpg

from turnout_common.auth import token_hash
from turnout_common.crypto import hash_virtual_key, key_hint, new_virtual_key
from turnout_common.errors import Conflict, NotFound, ValidationFailed
from turnout_config_api.changes import Actor, insert_recorded, update_recorded
from turnout_config_api.schemas.keys import AdminTokenCreate, KeyCreate, KeyUpdate
from turnout_config_api.services.common import new_id, patch_changes
from turnout_config_api.services.usage import resolve_names

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


async def _check_allowed(conn: asyncpg.Connection, allowed: list[str] | None) -> None:
    """``allowed_models`` entries must be catalog names, aliases or ids, like a route's.

    They are stored as given: the router resolves an id itself, to the entry's name *and*
    aliases, which storing only the name would narrow."""
    if allowed:
        await resolve_names(conn, allowed, "allowed_models")


async def _within_max_keys(conn: asyncpg.Connection, user_id: str) -> None:
    # serialised per user: two concurrent creations cannot both take the last place
    await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
    most = await conn.fetchval(
        "SELECT t.max_keys FROM users u JOIN tiers t ON t.name = u.tier WHERE u.id = $1", user_id
    )
    if most is None:
        return
    active = await conn.fetchval(
        "SELECT count(*) FROM virtual_keys WHERE user_id = $1 AND NOT revoked"
        " AND (expires_at IS NULL OR expires_at > now())",
        user_id,
    )
    if active >= most:
        raise Conflict(
            f"your tier allows {most} active keys and you have {active}: revoke one first "
            "(DELETE /api/v1/keys/{id})",
            code="key_limit_reached",
        )


async def create(
    pool: asyncpg.Pool, actor: Actor, body: KeyCreate, *, self_service: bool = False
) -> tuple[asyncpg.Record, str]:
    """Returns the row and the secret (to show once). ``self_service``: a user creating
    their own key, held to their tier's ``max_keys``."""
    _future(body.expires_at)
    secret = new_virtual_key()
    values = body.model_dump()
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM users WHERE id = $1", body.user_id):
            raise ValidationFailed(
                f"no user {body.user_id!r}: create it with POST /api/v1/users first",
                param="user_id",
            )
        await _check_allowed(conn, body.allowed_models)
        if self_service:
            await _within_max_keys(conn, body.user_id)
        row = await insert_recorded(
            conn,
            actor,
            "virtual_key",
            {
                "id": new_id(),
                **values,
                "key_hash": hash_virtual_key(secret),
                "key_hint": key_hint(secret),
            },
        )
    return row, secret


async def update(pool: asyncpg.Pool, actor: Actor, key_id: str, body: KeyUpdate) -> asyncpg.Record:
    changes = patch_changes(body, frozenset({"name"}))
    if changes.get("expires_at") is not None:
        _future(changes["expires_at"])
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, key_id)
        await _check_allowed(conn, changes.get("allowed_models"))
        row = await update_recorded(conn, actor, "virtual_key", current, changes)
    return row


async def revoke(pool: asyncpg.Pool, actor: Actor, key_id: str) -> asyncpg.Record:
    """DELETE = revoke: the row stays (usage refers to it); the event says ``revoked: true``."""
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, key_id)
        if current["revoked"]:
            return current
        row = await update_recorded(
            conn, actor, "virtual_key", current, {"revoked": True}, action="revoke"
        )
    return row


async def mint_admin_token(
    pool: asyncpg.Pool, actor: Actor, body: AdminTokenCreate
) -> tuple[asyncpg.Record, str]:
    secret = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        row = await insert_recorded(
            conn,
            actor,
            "admin_token",
            {
                "id": new_id(),
                "name": body.name,
                "token_hash": token_hash(secret),
                "created_by": actor.name,
            },
        )
    return row, secret


async def revoke_admin_token(pool: asyncpg.Pool, actor: Actor, token_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow("SELECT * FROM admin_tokens WHERE id = $1", token_id)
        if current is None:
            raise NotFound(f"no admin token with id {token_id!r}")
        row = await update_recorded(
            conn, actor, "admin_token", current, {"revoked": True}, action="revoke", touch=False
        )
    return row
