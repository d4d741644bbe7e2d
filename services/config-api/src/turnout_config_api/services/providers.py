"""Providers: create / update / delete with encrypted keys, audit and events."""

from __future__ import annotations

from typing import Any

import asyncpg

from turnout_common.crypto import KeyRing, key_hint
from turnout_common.errors import Conflict, NotFound
from turnout_config_api.changes import (
    Actor,
    delete_recorded,
    insert_recorded,
    update_recorded,
)
from turnout_config_api.kinds import check_byok, resolve_base_url
from turnout_config_api.schemas.providers import ProviderCreate, ProviderOut, ProviderUpdate
from turnout_config_api.services.common import new_id, patch_changes, tier_exists
from turnout_config_api.services.usage import exclusive_names, refuse_if_used

_NOT_NULL = frozenset(
    {
        "name",
        "kind",
        "enabled",
        "priority",
        "weight",
        "min_tier",
        "is_system",
        "byok_enabled",
        "timeout_s",
    }
)


def to_out(row: asyncpg.Record) -> ProviderOut:
    data = dict(row)
    data["has_api_key"] = row["api_key_encrypted"] is not None
    data["metadata"] = dict(row["metadata"] or {})
    return ProviderOut.model_validate(data)


async def get(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    """A provider by id, else by name."""
    row = await conn.fetchrow("SELECT * FROM providers WHERE id = $1", ref)
    if row is None:
        row = await conn.fetchrow("SELECT * FROM providers WHERE name = $1", ref)
    if row is None:
        raise NotFound(f"no provider with id or name {ref!r}", param="provider")
    return row


async def _name_free(conn: asyncpg.Connection, name: str, own_id: str | None = None) -> None:
    other = await conn.fetchval("SELECT id FROM providers WHERE name = $1", name)
    if other is not None and other != own_id:
        raise Conflict(
            f"a provider named {name!r} already exists; pick another name or PATCH it",
            code="duplicate_name",
            param="name",
        )


async def create(
    pool: asyncpg.Pool, ring: KeyRing, actor: Actor, body: ProviderCreate
) -> asyncpg.Record:
    values: dict[str, Any] = body.model_dump(exclude={"api_key"})
    values["base_url"] = resolve_base_url(body.kind, body.base_url)
    check_byok(body.kind, body.byok_enabled)
    secret = body.api_key.get_secret_value() if body.api_key else None
    values["api_key_encrypted"] = ring.encrypt(secret) if secret else None
    values["api_key_hint"] = key_hint(secret) if secret else None
    async with pool.acquire() as conn, conn.transaction():
        await _name_free(conn, body.name)
        await tier_exists(conn, body.min_tier)
        row = await insert_recorded(conn, actor, "provider", {"id": new_id(), **values})
    return row


async def update(
    pool: asyncpg.Pool, ring: KeyRing, actor: Actor, ref: str, body: ProviderUpdate
) -> asyncpg.Record:
    changes = patch_changes(body, _NOT_NULL)
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, ref)
        if "name" in changes:
            await _name_free(conn, changes["name"], current["id"])
        if changes.get("min_tier"):
            await tier_exists(conn, changes["min_tier"])
        if "kind" in changes or "base_url" in changes:
            kind = changes.get("kind", current["kind"])
            url = changes["base_url"] if "base_url" in changes else current["base_url"]
            changes["base_url"] = resolve_base_url(kind, url)
        check_byok(
            changes.get("kind", current["kind"]),
            changes.get("byok_enabled", current["byok_enabled"]),
        )
        if "api_key" in changes:
            secret = body.api_key.get_secret_value() if body.api_key else None
            changes.pop("api_key")
            changes["api_key_encrypted"] = ring.encrypt(secret) if secret else None
            changes["api_key_hint"] = key_hint(secret) if secret else None
        row = await update_recorded(conn, actor, "provider", current, changes)
    return row


async def delete(pool: asyncpg.Pool, actor: Actor, ref: str) -> None:
    """Refuses (409) while a route or rule needs one of its models; else removes the provider,
    its models and BYOK keys, publishing a tombstone for each."""
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, ref)
        pid = current["id"]
        await refuse_if_used(
            conn, f"provider {current['name']!r}", await exclusive_names(conn, provider_id=pid)
        )
        await delete_recorded(conn, actor, "provider", current, ["model", "byok_key"])
