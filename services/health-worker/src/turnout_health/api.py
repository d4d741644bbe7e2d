"""``/api/v1/health``: current state per provider and probe history (admin only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from turnout_common.errors import NotFound
from turnout_common.events import HealthStatus
from turnout_health import overrides, repository
from turnout_health.deps import AdminDep, StateDep
from turnout_health.schemas import (
    DeploymentHealth,
    PassiveStats,
    ProbeHistory,
    ProbeRecord,
    ProviderHealth,
    ProviderList,
)

router = APIRouter(prefix="/api/v1/health", dependencies=[AdminDep], tags=["health"])


def _passive(counts: list[repository.PassiveCount]) -> list[PassiveStats]:
    return [
        PassiveStats(
            deployment_id=c.deployment_id or None,
            requests=c.requests,
            errors=c.errors,
            error_rate=c.errors / c.requests if c.requests else 0.0,
            avg_latency_ms=c.latency_ms_sum / c.requests if c.requests else None,
            max_latency_ms=c.latency_ms_max if c.requests else None,
        )
        for c in counts
    ]


WORST_FIRST = {"down": 0, "degraded": 1, "unknown": 2, "healthy": 3}
"""``sort=status``: the states that need an operator first."""


@router.get("/providers", response_model=ProviderList)
async def list_providers(
    state: StateDep,
    status: Annotated[
        HealthStatus | None, Query(description="only providers in this state")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="a page, by name (default: every row)")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    sort: Annotated[
        Literal["name", "status"],
        Query(
            description="the page's order (with limit): by name, or the worst first (down,"
            " degraded, unknown, healthy; an override counts as the state it forces), by name"
            " within each"
        ),
    ] = "name",
) -> ProviderList:
    """Every provider's health, by id; with ``limit`` a page of them by name or by status (the
    console shows 20 of 10,000 without the health-worker building 10,000 answers)."""
    async with state.pool.acquire() as conn:
        all_rows = await repository.list_states(conn)
        counts = await repository.passive_window(
            conn, state.health.passive_window_s, per_deployment=True, baseline=False
        )
        forced = await overrides.all_active(conn)
    rows = {r["provider_id"]: r for r in all_rows if not r["deployment_id"]}
    deployments: dict[str, list[DeploymentHealth]] = {}
    for r in all_rows:
        if r["deployment_id"]:
            deployments.setdefault(r["provider_id"], []).append(DeploymentHealth(**r))
    by_provider: dict[str, list[repository.PassiveCount]] = {}
    for c in counts:
        by_provider.setdefault(c.provider_id, []).append(c)
    ids = sorted(set(rows) | set(deployments) | set(state.registry.providers))
    if status is not None:
        ids = [pid for pid in ids if (rows.get(pid) or {}).get("status", "unknown") == status]
    total = len(ids)
    if limit is not None:
        names = state.registry.providers

        def order(pid: str) -> tuple[int, str, str]:
            cfg = names.get(pid)
            name = cfg.name if cfg else pid
            if sort == "name":
                return (0, name, pid)
            override = forced.get(pid)
            if override is not None:  # what the router sees, as forced_event publishes it
                seen = "down" if override["status"] == "down" else "healthy"
            else:
                seen = (rows.get(pid) or {}).get("status", "unknown")
            return (WORST_FIRST.get(seen, len(WORST_FIRST)), name, pid)

        ids = sorted(ids, key=order)[offset : offset + limit]
    data = []
    for pid in ids:
        row: dict[str, Any] = dict(rows.get(pid) or {})
        cfg = state.registry.providers.get(pid)
        data.append(
            ProviderHealth(
                provider_id=pid,
                name=cfg.name if cfg else None,
                kind=cfg.kind if cfg else None,
                enabled=cfg.enabled if cfg else None,
                is_system=cfg.is_system if cfg else False,
                status=row.get("status", "unknown"),
                circuit=row.get("circuit", "closed"),
                auto_disabled=row.get("auto_disabled", False),
                latency_ms=row.get("latency_ms"),
                reason=row.get("reason", "not probed yet"),
                recent_failures=row.get("recent_failures", 0),
                last_probe_at=row.get("last_probe_at"),
                changed_at=row.get("changed_at"),
                deployments=deployments.get(pid, []),
                passive=_passive(by_provider.get(pid, [])),
                override=forced.get(pid),
            )
        )
    if limit is None:
        return ProviderList(data=data, total=total, limit=total)
    return ProviderList(data=data, total=total, limit=limit, offset=offset)


@router.get("/providers/{provider_id}/history", response_model=ProbeHistory)
async def provider_history(
    state: StateDep,
    provider_id: Annotated[str, Path(description="provider id or name")],
    limit: Annotated[int, Query(ge=1, le=1000, description="rows per page")] = 100,
    before: Annotated[int | None, Query(ge=1, description="return rows older than this id")] = None,
) -> ProbeHistory:
    ref = provider_id
    provider_id = state.registry.provider_id(ref)
    async with state.pool.acquire() as conn:
        rows = await repository.history(conn, provider_id, limit, before)
    if not rows and provider_id not in state.registry.providers and before is None:
        raise NotFound(f"no provider with id or name {ref!r} is configured or has health history")
    records = [ProbeRecord(**r) for r in rows]
    next_before = records[-1].id if len(records) == limit else None
    return ProbeHistory(provider_id=provider_id, data=records, next_before=next_before)
