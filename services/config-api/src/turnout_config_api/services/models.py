"""The model catalog: deployments of public model names on providers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from turnout_common.db import Where
from turnout_common.errors import Conflict, NotFound, ValidationFailed
from turnout_config_api import prices
from turnout_config_api.changes import (
    Actor,
    delete_recorded,
    insert_recorded,
    update_recorded,
)
from turnout_config_api.schemas.models import ModelCreate, ModelOut, ModelUpdate
from turnout_config_api.services import providers
from turnout_config_api.services.common import new_id, patch_changes, tier_exists
from turnout_config_api.services.usage import exclusive_names, refuse_if_used, resolve_names

_NOT_NULL = frozenset(
    {
        "upstream_model",
        "name",
        "purposes",
        "capabilities",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "min_tier",
        "enabled",
        "deprecated",
        "priority",
        "weight",
        "routing_strategy",
        "fallbacks",
        "aliases",
    }
)
_SELECT = (
    "SELECT m.*, p.name AS provider_name FROM models m JOIN providers p ON p.id = m.provider_id"
)


def _rank(name_sql: str) -> str:
    """A tier's rank in SQL (an unknown tier ranks 0, as the router ranks it)."""
    return f"COALESCE((SELECT t.rank FROM tiers t WHERE t.name = {name_sql}), 0)"


_SORTS = {
    "name": "m.name",
    "price": "m.input_price_per_mtok + m.output_price_per_mtok",
    "context_length": "m.context_window",
}


def to_out(row: asyncpg.Record) -> ModelOut:
    data = dict(row)
    data["capabilities"] = dict(row["capabilities"] or {})
    return ModelOut.model_validate(data)


async def get(conn: asyncpg.Connection, model_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(f"{_SELECT} WHERE m.id = $1", model_id)
    if row is None:
        raise NotFound(f"no model deployment with id {model_id!r}")
    return row


async def _unique(conn: asyncpg.Connection, pid: str, pname: str, upstream: str) -> None:
    if await conn.fetchval(
        "SELECT 1 FROM models WHERE provider_id = $1 AND upstream_model = $2", pid, upstream
    ):
        raise Conflict(
            f"provider {pname!r} already serves {upstream!r}; PATCH that model "
            "instead (each (provider, upstream_model) is one deployment)",
            code="duplicate_model",
            param="upstream_model",
        )


async def resolve_fallbacks(conn: asyncpg.Connection, refs: list[str]) -> list[str]:
    """A catalog id in a model's fallbacks becomes that entry's public name; other values
    stay as they are (a fallback may name a model that is created later)."""
    return await resolve_names(conn, refs, "fallbacks", strict=False)


async def create(pool: asyncpg.Pool, actor: Actor, body: ModelCreate) -> asyncpg.Record:
    values: dict[str, Any] = body.model_dump(exclude={"provider"})
    values["name"] = body.name or body.upstream_model
    values["capabilities"] = {
        **prices.capabilities_for(body.upstream_model),
        **body.capabilities.model_dump(exclude_none=True),
    }
    async with pool.acquire() as conn, conn.transaction():
        try:
            provider = await providers.get(conn, body.provider)
        except NotFound as exc:
            raise ValidationFailed(exc.message + "; create it first", param="provider") from exc
        await _unique(conn, provider["id"], provider["name"], body.upstream_model)
        await tier_exists(conn, body.min_tier)
        values["fallbacks"] = await resolve_fallbacks(conn, values["fallbacks"])
        row = await insert_and_record(conn, actor, provider["id"], values)
    return row


async def insert_and_record(
    conn: asyncpg.Connection, actor: Actor, provider_id: str, values: dict[str, Any]
) -> asyncpg.Record:
    inserted = await insert_recorded(
        conn, actor, "model", {"id": new_id(), "provider_id": provider_id, **values}
    )
    return await get(conn, inserted["id"])


async def update(
    pool: asyncpg.Pool, actor: Actor, model_id: str, body: ModelUpdate
) -> asyncpg.Record:
    changes = patch_changes(body, _NOT_NULL)
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, model_id)
        if "upstream_model" in changes and changes["upstream_model"] != current["upstream_model"]:
            await _unique(
                conn, current["provider_id"], current["provider_name"], changes["upstream_model"]
            )
        if "name" in changes and changes["name"] != current["name"]:
            names = await exclusive_names(conn, model_id=model_id)
            await refuse_if_used(conn, f"renaming model {current['name']!r}", names)
        if changes.get("min_tier"):
            await tier_exists(conn, changes["min_tier"])
        if "fallbacks" in changes:
            changes["fallbacks"] = await resolve_fallbacks(conn, changes["fallbacks"])
        if "capabilities" in changes:
            # a PATCH merges: keys it omits stay; null un-declares one
            merged = {**dict(current["capabilities"] or {}), **changes["capabilities"]}
            changes["capabilities"] = {k: v for k, v in merged.items() if v is not None}
        await update_recorded(conn, actor, "model", current, changes)
        return await get(conn, model_id)


async def delete(pool: asyncpg.Pool, actor: Actor, model_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        current = await get(conn, model_id)
        names = await exclusive_names(conn, model_id=model_id)
        await refuse_if_used(conn, f"model {current['name']!r}", names)
        await delete_recorded(conn, actor, "model", current)


@dataclass(frozen=True, slots=True)
class ModelQuery:
    """What ``GET /models`` and ``GET /catalog`` both filter by, their sort and their page."""

    provider: str | None
    search: str | None
    capability: str | None
    purpose: str | None
    deprecated: bool | None
    sort: str
    limit: int
    offset: int


async def search(
    pool: asyncpg.Pool, q: ModelQuery, *, enabled: bool | None, tier: str | None = None
) -> tuple[list[asyncpg.Record], int]:
    """The catalog's deployments by the filters; ``tier``: only those a user of that tier may
    use (the model's and its provider's ``min_tier`` rank at most the tier's; an unknown tier
    ranks 0), on enabled providers."""
    provider, search, capability, purpose = q.provider, q.search, q.capability, q.purpose
    sort, deprecated, limit, offset = q.sort, q.deprecated, q.limit, q.offset
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in _SORTS:
        raise ValidationFailed(
            f"sort must be one of {', '.join(_SORTS)} (prefix '-' for descending)", param="sort"
        )
    w = Where()
    if provider:
        w.add("(p.id = ? OR p.name = ?)", provider)
    if search:
        w.add("(m.name ILIKE ? OR m.upstream_model ILIKE ?)", f"%{search}%")
    if capability:
        w.add("(m.capabilities ->> ?) = 'true'", capability)
    if purpose:
        w.add("? = ANY(m.purposes)", purpose)
    w.given("m.enabled = ?", enabled)
    w.given("m.deprecated = ?", deprecated)
    w.given(
        f"p.enabled AND {_rank('m.min_tier')} <= {_rank('?')}"
        f" AND {_rank('p.min_tier')} <= {_rank('?')}",
        tier,
    )
    where, args = w.sql, w.args
    order = f"{_SORTS[key]} {'DESC' if desc else 'ASC'} NULLS LAST, m.name, m.id"
    async with pool.acquire() as conn:
        total: int = await conn.fetchval(
            f"SELECT count(*) FROM models m JOIN providers p ON p.id = m.provider_id{where}", *args
        )
        rows = await conn.fetch(
            f"{_SELECT}{where} ORDER BY {order} LIMIT {limit} OFFSET {offset}", *args
        )
    return rows, total
