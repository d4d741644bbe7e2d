"""Routes (per purpose) and routing rules."""

from __future__ import annotations

from typing import Any

import asyncpg

from turnout_common.errors import Conflict, NotFound, ValidationFailed
from turnout_config_api import shapes
from turnout_config_api.changes import Actor, next_revision, record
from turnout_config_api.schemas.routing import RoutePut, RuleCreate, RuleUpdate
from turnout_config_api.services.common import (
    insert_row,
    new_id,
    reject_nulls,
    tier_exists,
    update_row,
)
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
        await record(
            conn,
            actor,
            revision=rev,
            entity="route",
            entity_id=purpose,
            action="update" if before else "create",
            before=shapes.route(before) if before else None,
            after=shapes.route(row),
        )
    return row


async def delete_route(pool: asyncpg.Pool, actor: Actor, purpose: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow("DELETE FROM routes WHERE purpose = $1 RETURNING *", purpose)
        if before is None:
            raise NotFound(f"no route for purpose {purpose!r}")
        rev = await next_revision(conn)
        await record(
            conn,
            actor,
            revision=rev,
            entity="route",
            entity_id=purpose,
            action="delete",
            before=shapes.route(before),
            after=None,
        )


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
        rev = await next_revision(conn)
        row = await insert_row(conn, "routing_rules", {"id": new_id(), **values, "revision": rev})
        await record(
            conn,
            actor,
            revision=rev,
            entity="routing_rule",
            entity_id=row["id"],
            action="create",
            before=None,
            after=shapes.routing_rule(row),
        )
    return row


async def update_rule(
    pool: asyncpg.Pool, actor: Actor, ref: str, body: RuleUpdate
) -> asyncpg.Record:
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, _RULE_NOT_NULL)
    async with pool.acquire() as conn, conn.transaction():
        current = await get_rule(conn, ref)
        await _validate_rule(conn, changes, current["id"])
        lo = changes.get("min_tokens", current["min_tokens"])
        hi = changes.get("max_tokens", current["max_tokens"])
        if lo is not None and hi is not None and lo > hi:
            raise ValidationFailed(
                "min_tokens must not be greater than max_tokens", param="min_tokens"
            )
        rev = await next_revision(conn)
        row = await update_row(conn, "routing_rules", {"id": current["id"]}, changes, rev)
        await record(
            conn,
            actor,
            revision=rev,
            entity="routing_rule",
            entity_id=row["id"],
            action="update",
            before=shapes.routing_rule(current),
            after=shapes.routing_rule(row),
        )
    return row


async def delete_rule(pool: asyncpg.Pool, actor: Actor, ref: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        current = await get_rule(conn, ref)
        rev = await next_revision(conn)
        await conn.execute("DELETE FROM routing_rules WHERE id = $1", current["id"])
        await record(
            conn,
            actor,
            revision=rev,
            entity="routing_rule",
            entity_id=current["id"],
            action="delete",
            before=shapes.routing_rule(current),
            after=None,
        )
