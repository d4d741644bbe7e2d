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
from turnout_config_api.services.usage import resolve_names

_RULE_NOT_NULL = frozenset({"name", "enabled", "priority", "requires_byok", "targets", "weight"})


async def put_route(
    pool: asyncpg.Pool, actor: Actor, purpose: str, body: RoutePut
) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        body = await _resolve_route(conn, body)
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


async def _resolve_route(conn: asyncpg.Connection, body: RoutePut) -> RoutePut:
    """The route with catalog ids replaced by public names (422 for unknown ones)."""
    (model,) = await resolve_names(conn, [body.model], "model")
    fallbacks = await resolve_names(conn, body.fallbacks, "fallbacks")
    return body.model_copy(update={"model": model, "fallbacks": fallbacks})


async def _resolve_rule_refs(conn: asyncpg.Connection, values: dict[str, Any]) -> dict[str, Any]:
    """``targets`` (known names, aliases or ids) and ``model`` with ids made public names.

    ``model`` is the requested model a rule matches: ``auto`` or a name not (yet) in the
    catalog stays as it is, as before; only a catalog id is replaced.
    """
    out = dict(values)
    if out.get("targets"):
        out["targets"] = await resolve_names(conn, out["targets"], "targets")
    if out.get("model") is not None:
        (out["model"],) = await resolve_names(conn, [out["model"]], "model", strict=False)
    return out


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
) -> dict[str, Any]:
    """The values with model references resolved to public names, or a 409/422."""
    if values.get("name") is not None:
        other = await conn.fetchval("SELECT id FROM routing_rules WHERE name = $1", values["name"])
        if other is not None and other != own_id:
            raise Conflict(
                f"a routing rule named {values['name']!r} already exists",
                code="duplicate_name",
                param="name",
            )
    resolved = await _resolve_rule_refs(conn, values)
    if values.get("tier"):
        await tier_exists(conn, values["tier"])
    return resolved


async def create_rule(pool: asyncpg.Pool, actor: Actor, body: RuleCreate) -> asyncpg.Record:
    values = body.model_dump()
    async with pool.acquire() as conn, conn.transaction():
        values = await _validate_rule(conn, values, None)
        row = await insert_recorded(conn, actor, "routing_rule", {"id": new_id(), **values})
    return row


async def update_rule(
    pool: asyncpg.Pool, actor: Actor, ref: str, body: RuleUpdate
) -> asyncpg.Record:
    changes = patch_changes(body, _RULE_NOT_NULL)
    async with pool.acquire() as conn, conn.transaction():
        current = await get_rule(conn, ref)
        changes = await _validate_rule(conn, changes, current["id"])
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
