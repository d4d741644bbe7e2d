"""``/providers``: CRUD, live test and model discovery."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from turnout_common.web import MAX_OFFSET
from turnout_config_api.deps import AdminDep, AdminReadDep, StateDep
from turnout_config_api.kinds import ProviderKind, describe_kinds
from turnout_config_api.schemas.common import Page
from turnout_config_api.schemas.providers import (
    DiscoverResult,
    ProbeResult,
    ProviderCreate,
    ProviderOut,
    ProviderUpdate,
)
from turnout_config_api.services import discovery, providers
from turnout_config_api.state import AppState

router = APIRouter(prefix="/providers", tags=["providers"])


def _with_health(state: AppState, out: ProviderOut) -> ProviderOut:
    out.health = state.health.of(out.id)
    return out


def _like(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, its ``%``, ``_`` and ``\\`` literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


HealthStatus = Literal["healthy", "degraded", "down", "unknown"]
Capability = Literal["streaming", "tools", "vision", "json_mode"]
MODEL_COUNT = "(SELECT count(*) FROM models m WHERE m.provider_id = p.id)"
SORTS = {
    "priority": "p.priority",
    "name": "p.name",
    "kind": "p.kind",
    "base_url": "p.base_url",
    "enabled": "p.enabled",
    "models": MODEL_COUNT,
    "created_at": "p.created_at",
}
"""``sort`` keys and the SQL they order by (never the caller's text)."""


@router.get("/kinds")
async def provider_kinds(_: AdminReadDep) -> Page[dict[str, Any]]:
    """Every provider kind: its default base URL (or an example for self-hosted servers), how
    its key is sent, and whether a user may bring their own key for it (BYOK)."""
    return Page[dict[str, Any]].whole(describe_kinds())


@router.get("", response_model=Page[ProviderOut])
async def list_providers(
    state: StateDep,
    _: AdminReadDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    enabled_only: bool = False,
    kind: ProviderKind | None = None,
    health: Annotated[HealthStatus | None, Query(description="latest health status")] = None,
    capability: Annotated[
        Capability | None, Query(description="has a model that declares this capability")
    ] = None,
    search: Annotated[
        str | None,
        Query(max_length=200, description="a substring of the name, kind or base URL (any case)"),
    ] = None,
    sort: Annotated[
        str,
        Query(
            pattern=f"^-?({'|'.join(SORTS)})$",
            description="priority (then name), name, kind, base_url, enabled, models (how many "
            "the catalog has) or created_at; '-' first for descending",
        ),
    ] = "priority",
) -> Page[ProviderOut]:
    """Providers by priority then name (or ``sort``), with their latest health and how many
    catalog models each serves (``model_count``); filters combine."""
    where: list[str] = ["TRUE"]
    args: list[str] = []
    if search:
        args.append(_like(search))
        n = len(args)
        where.append(f"(p.name ILIKE ${n} OR p.kind ILIKE ${n} OR p.base_url ILIKE ${n})")
    if enabled_only:
        where.append("p.enabled")
    if kind is not None:
        args.append(kind)
        where.append(f"p.kind = ${len(args)}")
    if capability is not None:
        args.append(capability)
        where.append(
            "EXISTS (SELECT 1 FROM models m WHERE m.provider_id = p.id"
            f" AND (m.capabilities ->> ${len(args)}) = 'true')"
        )
    key, desc = sort.lstrip("-"), " DESC" if sort.startswith("-") else ""
    cond, order = " AND ".join(where), f"{SORTS[key]}{desc}, p.name, p.id"

    def page_sql(window: str) -> str:
        """The page first, then the model count of its rows only (not of every row an
        OFFSET skips); ``pos`` keeps the order."""
        return (
            "SELECT q.*, (SELECT count(*) FROM models m WHERE m.provider_id = q.id)"
            f" AS model_count FROM (SELECT p.*, row_number() OVER (ORDER BY {order}) AS pos"
            f" FROM providers p WHERE {cond} ORDER BY {order}{window}) q ORDER BY q.pos"
        )

    async with state.pool.acquire() as conn:
        if health is None:
            total = await conn.fetchval(f"SELECT count(*) FROM providers p WHERE {cond}", *args)
            rows = await conn.fetch(page_sql(f" LIMIT {limit} OFFSET {offset}"), *args)
        else:  # health lives in memory (the health-worker's events): filter, then page
            rows = await conn.fetch(page_sql(""), *args)
    data = [_with_health(state, providers.to_out(r)) for r in rows]
    if health is not None:
        data = [p for p in data if (p.health.status if p.health else "unknown") == health]
        total, data = len(data), data[offset : offset + limit]
    return Page(data=data, total=total, limit=limit, offset=offset)


@router.post("", status_code=201, response_model=ProviderOut)
async def create_provider(state: StateDep, actor: AdminDep, body: ProviderCreate) -> ProviderOut:
    return providers.to_out(await providers.create(state.pool, state.ring, actor, body))


@router.get("/{ref}", response_model=ProviderOut)
async def get_provider(state: StateDep, _: AdminReadDep, ref: str) -> ProviderOut:
    async with state.pool.acquire() as conn:
        return _with_health(state, providers.to_out(await providers.get(conn, ref)))


@router.patch("/{ref}", response_model=ProviderOut)
async def update_provider(
    state: StateDep, actor: AdminDep, ref: str, body: ProviderUpdate
) -> ProviderOut:
    return providers.to_out(await providers.update(state.pool, state.ring, actor, ref, body))


@router.delete("/{ref}", status_code=204)
async def delete_provider(state: StateDep, actor: AdminDep, ref: str) -> Response:
    await providers.delete(state.pool, actor, ref)
    return Response(status_code=204)


@router.post("/{ref}/test", response_model=ProbeResult)
async def probe_provider(state: StateDep, _: AdminDep, ref: str) -> ProbeResult:
    row, result = await discovery.check_provider(
        state.pool, state.ring, state.http, ref, state.settings.probe_timeout_s
    )
    return ProbeResult(provider=row["name"], kind=row["kind"], **result.__dict__)


@router.post("/{ref}/discover", response_model=DiscoverResult)
async def discover_models(state: StateDep, actor: AdminDep, ref: str) -> DiscoverResult:
    return await discovery.discover(
        state.pool, state.ring, state.http, actor, ref, state.settings.probe_timeout_s
    )
