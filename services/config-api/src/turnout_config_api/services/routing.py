"""Routes (per purpose) and routing rules."""

from __future__ import annotations

from typing import Any

import asyncpg

from turnout_common.errors import Conflict, NotFound, ValidationFailed
from turnout_config_api.changes import (
    Actor,
    delete_recorded,
    insert_recorded,
    next_revision,
    record_change,
    update_recorded,
)
from turnout_config_api.schemas.routing import RoutePut, RuleCreate, RuleUpdate
from turnout_config_api.services.common import new_id, patch_changes, tier_exists
from turnout_config_api.services.usage import require_known_names

_RULE_NOT_NULL = frozenset({"name", "enabled", "priority", "requires_byok", "targets", "weight"})


async def put_route(
    pool: asyncpg.Pool, actor: Actor, purpose: str, body: RoutePut
) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        await require_known_names(conn, [body.model], "model")
        await require_known_names(conn, body.fallbacks, "fallbacks")
        before = await conn.fetchrow("SELECT * FROM routes WHERE purpose = $1", purpose)
        rev = await next_revision(conn)
        row = await conn.fetchrow(
            "INSERT INTO routes (purpose, model, fallbacks, revision) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (purpose) DO UPDATE SET model = EXCLUDED.model,"
            " fallbacks = EXCLUDED.fallbacks, revision = EXCLUDED.revision, updated_at = now()"
            " RETURNING *",
            purpose,
            body.model,
            body.fallbacks,
            rev,
        )
        assert row is not None
        await record_change(conn, actor, rev, "route", before, row)
    return row


async def delete_route(pool: asyncpg.Pool, actor: Actor, purpose: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow("DELETE FROM routes WHERE purpose = $1 RETURNING *", purpose)
        if before is None:
            raise NotFound(f"no route for purpose {purpose!r}")
        await record_change(conn, actor, await next_revision(conn), "route", before, None)


async def get_rule(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM routing_rules WHERE id = $1 OR name = $1", ref)
    if row is None:
        raise NotFound(f"no routing rule with id or name {ref!r}")
    return row


async def _validate_rule(
    conn: asyncpg.Connection, values: dict[str, Any], own_id: str | None
) -> None:
    if values.get("name") is not None:
        other = await conn.fetchval("SELECT id FROM routing_rules WHERE name = $1", values["name"])
        if other is not None and other != own_id:
            raise Conflict(
                f"a routing rule named {values['name']!r} already exists",
                code="duplicate_name",
                param="name",
            )
    if values.get("targets"):
        await require_known_names(conn, values["targets"], "targets")
    if values.get("tier"):
        await tier_exists(conn, values["tier"])


async def create_rule(pool: asyncpg.Pool, actor: Actor, body: RuleCreate) -> asyncpg.Record:
    values = body.model_dump()
    async with pool.acquire() as conn, conn.transaction():
        await _validate_rule(conn, values, None)
        row = await insert_recorded(conn, actor, "routing_rule", {"id": new_id(), **values})
    return row


async def update_rule(
    pool: asyncpg.Pool, actor: Actor, ref: str, body: RuleUpdate
) -> asyncpg.Record:
    changes = patch_changes(body, _RULE_NOT_NULL)
    async with pool.acquire() as conn, conn.transaction():
        current = await get_rule(conn, ref)
        await _validate_rule(conn, changes, current["id"])
        lo = changes.get("min_tokens", current["min_tokens"])
        hi = changes.get("max_tokens", current["max_tokens"])
        if lo is not None and hi is not None and lo > hi:
            raise ValidationFailed(
                "min_tokens must not be greater than max_tokens", param="min_tokens"
            )
        row = await update_recorded(conn, actor, "routing_rule", current, changes)
    return row


async def delete_rule(pool: asyncpg.Pool, actor: Actor, ref: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        current = await get_rule(conn, ref)
        await delete_recorded(conn, actor, "routing_rule", current)
