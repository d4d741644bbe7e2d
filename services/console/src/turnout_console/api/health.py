"""Health (admin): every provider's status, circuit, latency and last check, from the
health-worker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from turnout_console.deps import AdminDep, PartsDep

router = APIRouter(prefix="/health")


@router.get("")
async def health_page(request: Request, parts: PartsDep, session: AdminDep) -> Response:
    result = await parts.client.call(
        "health", "GET", "/api/v1/health/providers", session.credential.get_secret_value()
    )
    rows = result.data["data"] if result.ok else []
    return parts.templates.TemplateResponse(
        request,
        "health.html",
        {"session": session, "rows": rows, "error": None if result.ok else result.message},
    )
