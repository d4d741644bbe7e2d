"""``/api/v1/health``: the admin's hand — override a provider's state, check one now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from turnout_common.auth import Principal
from turnout_common.errors import NotFound, ServiceUnavailable
from turnout_common.web import MAX_OFFSET
from turnout_health import overrides
from turnout_health.deps import AppState, StateDep, require_admin
from turnout_health.schemas import CheckResult, OverrideLog, OverrideOut, OverridePut

router = APIRouter(prefix="/api/v1/health", tags=["health"])
Admin = Annotated[Principal, Depends(require_admin)]
ProviderRef = Annotated[str, Path(description="provider id or name")]


def _known(state: AppState, ref: str) -> str:
    provider_id = state.registry.provider_id(ref)
    if provider_id not in state.registry.providers:
        raise NotFound(f"no provider with id or name {ref!r} is configured")
    return provider_id


@router.put("/providers/{provider_id}/override", response_model=OverrideOut)
async def put_override(
    state: StateDep, admin: Admin, provider_id: ProviderRef, body: OverridePut
) -> OverrideOut:
    """Forces the provider ``up`` or ``down`` until cleared or ``expires_at``; published at
    once on ``turnout.health.v1`` (``down``: the router skips it, system providers too; ``up``:
    served whatever the probes say). Audited in the override log; replaces any earlier one."""
    pid = _known(state, provider_id)
    row = await overrides.put(
        state.pool,
        state.health.schema_name,
        pid,
        body.status,
        body.reason,
        body.expires_at,
        admin.subject,
    )
    return OverrideOut.model_validate(dict(row))


@router.delete("/providers/{provider_id}/override", status_code=204)
async def delete_override(state: StateDep, admin: Admin, provider_id: ProviderRef) -> Response:
    """Ends the override: the measured state is published again (404 if none is active)."""
    pid = state.registry.provider_id(provider_id)
    await overrides.clear(state.pool, state.health.schema_name, pid, admin.subject)
    return Response(status_code=204)


@router.get("/overrides/log", response_model=OverrideLog)
async def override_log(
    state: StateDep,
    _: Admin,
    provider_id: Annotated[str | None, Query(description="provider id or name")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> OverrideLog:
    """Every override set, cleared or expired, newest first: who, when, what and why."""
    pid = state.registry.provider_id(provider_id) if provider_id else None
    async with state.pool.acquire() as conn:
        rows, total = await overrides.log(conn, pid, limit, offset)
    return OverrideLog.model_validate(
        {"data": rows, "total": total, "limit": limit, "offset": offset}
    )


@router.post("/providers/{provider_id}/check", response_model=CheckResult)
async def check_now(
    request: Request, state: StateDep, _: Admin, provider_id: ProviderRef
) -> CheckResult:
    """Probes the provider now and feeds the result to its circuit like a scheduled probe
    (the state changes and events follow). Answered by the replica that probes (the leader);
    another replica answers 503 with ``Retry-After: 1``."""
    pid = _known(state, provider_id)
    worker = getattr(request.app.state, "worker", None)
    if worker is None or not worker.lease.is_leader:
        raise ServiceUnavailable(
            "this replica is not the prober right now; retry (the prober's replica answers)",
            code="not_the_prober",
            headers={"retry-after": "1"},
        )
    cfg = state.registry.providers[pid]
    service = request.app.state.service
    result = await worker.prober.probe(cfg)
    await service.apply_probe(cfg, result)
    rt = service.runtime(pid)
    async with state.pool.acquire() as conn:
        active = await overrides.active(conn, pid)
    return CheckResult(
        provider_id=pid,
        probe_status=result.status,
        http_status=result.http_status,
        latency_ms=result.latency_ms,
        probe_reason=result.reason,
        status=rt.status,
        circuit=rt.circuit.state,
        reason=rt.reason,
        override=OverrideOut.model_validate(dict(active)) if active else None,
    )
