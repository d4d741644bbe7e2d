"""Health (admin): every provider's status, circuit, latency, last check and a strip of its
recent probes, from the health-worker; 20 a page, the worst first (or by name), filtered by
status. An admin can probe a provider now, and force it up or down (with a reason and an
optional expiry) or clear that.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView, Ctx
from turnout_console.views import safe_segment

router = APIRouter(prefix="/health")
CHANGED = "health-changed"
PAGE = 20
STRIP = 30
"""Probes in a provider's history strip, newest last."""

StatusQ = Annotated[Literal["", "healthy", "degraded", "down", "unknown"], Query()]


async def _strip(ctx: Ctx, provider_id: str) -> list[dict[str, Any]]:
    result = await ctx.get("health", f"{_one(provider_id)}/history", limit=STRIP)
    return list(reversed(result.rows))


async def _table(ctx: Ctx, page: int, status: str, sort: str) -> dict[str, Any]:
    """A page of the list, the worst first or by name, filtered, ordered and paged by the
    health-worker."""
    asked = {"status": status or None, "sort": sort}
    _, window = await ctx.paged("health", "/api/v1/health/providers", asked, page, PAGE)
    shown = window["rows"] = window["rows"][:PAGE]
    strips = await asyncio.gather(*(_strip(ctx, r["provider_id"]) for r in shown))
    for row, strip in zip(shown, strips, strict=True):
        row["strip"] = strip
    return {**window, "status": status, "sort": sort}


PageQ = Annotated[int, Query(ge=1, le=100_000)]


SortQ = Annotated[Literal["status", "name"], Query()]


@router.get("")
async def health_page(
    ctx: AdminView, page: PageQ = 1, status: StatusQ = "", sort: SortQ = "status"
) -> Response:
    table = await _table(ctx, page, status, sort)
    return ctx.page("health.html", "partials/health_table.html", table)


@router.get("/{provider_id}/override")
async def override_form(ctx: AdminView, provider_id: str, name: str = "") -> Response:
    context = {"provider_id": safe_segment(provider_id), "name": name[:200]}
    return ctx.render("partials/override_form.html", context)


@router.post("/{provider_id}/override")
async def set_override(
    ctx: AdminAct,
    provider_id: str,
    status: Annotated[Literal["up", "down"], Form()],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    hours: Annotated[float | None, Form(gt=0, le=24 * 365)] = None,
) -> Response:
    body: dict[str, Any] = {"status": status, "reason": reason.strip()}
    if hours:
        body["expires_at"] = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    path = f"{_one(provider_id)}/override"
    return await ctx.act("health", "PUT", path, f"Forced {status}.", json=body, trigger=CHANGED)


@router.post("/{provider_id}/override/clear")
async def clear_override(ctx: AdminAct, provider_id: str) -> Response:
    path = f"{_one(provider_id)}/override"
    return await ctx.act("health", "DELETE", path, "Override cleared.", trigger=CHANGED)


@router.post("/{provider_id}/check")
async def check_now(ctx: AdminAct, provider_id: str) -> Response:
    path = f"{_one(provider_id)}/check"
    return await ctx.act("health", "POST", path, _checked, trigger=CHANGED)


def _one(provider_id: str) -> str:
    return f"/api/v1/health/providers/{safe_segment(provider_id)}"


def _checked(d: dict[str, Any]) -> str:
    ms = f" in {float(d['latency_ms']):.0f} ms" if d.get("latency_ms") is not None else ""
    return f"Probe: {d.get('probe_status')}{ms} ({d.get('probe_reason')}); now {d.get('status')}."
