"""Providers (admin): the paged table with health badges, create, test and delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from turnout_common.web import MAX_OFFSET
from turnout_console.client import ApiResult
from turnout_console.deps import AdminCsrfDep, AdminDep, PartsDep
from turnout_console.views import KINDS, page_window, safe_segment, toast

router = APIRouter(prefix="/providers")
PAGE = 10


async def _table(parts: PartsDep, credential: str, page: int) -> dict[str, Any]:
    result = await parts.client.call(
        "config",
        "GET",
        "/api/v1/providers",
        credential,
        params={"limit": PAGE, "offset": (page - 1) * PAGE},
    )
    if not result.ok:
        return {"rows": [], "error": result.message, "page": page, "pages": 1, "total": 0}
    total = int(result.data.get("total", 0))
    return {
        "rows": result.data["data"],
        "error": None,
        "total": total,
        **page_window(page, total, PAGE),
    }


PageQ = Annotated[int, Query(ge=1, le=MAX_OFFSET // PAGE)]


@router.get("")
async def providers_page(
    request: Request, parts: PartsDep, session: AdminDep, page: PageQ = 1
) -> Response:
    table = await _table(parts, session.credential.get_secret_value(), page)
    return parts.templates.TemplateResponse(
        request, "providers.html", {"session": session, "kinds": KINDS, **table}
    )


@router.get("/table")
async def providers_table(
    request: Request, parts: PartsDep, session: AdminDep, page: PageQ = 1
) -> Response:
    table = await _table(parts, session.credential.get_secret_value(), page)
    return parts.templates.TemplateResponse(request, "partials/providers_table.html", table)


def _outcome(request: Request, parts: PartsDep, result: ApiResult, done: str) -> Response:
    if result.ok:
        return toast(parts, request, "success", done, trigger="providers-changed")
    return toast(parts, request, "error", result.message, status=result.status or 502)


@router.post("")
async def create_provider(
    request: Request,
    parts: PartsDep,
    session: AdminCsrfDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    kind: Annotated[str, Form(max_length=40)],
    base_url: Annotated[str, Form(max_length=2000)] = "",
    api_key: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    body: dict[str, Any] = {"name": name.strip(), "kind": kind}
    if base_url.strip():
        body["base_url"] = base_url.strip()
    if api_key:
        body["api_key"] = api_key
    result = await parts.client.call(
        "config", "POST", "/api/v1/providers", session.credential.get_secret_value(), json=body
    )
    return _outcome(request, parts, result, f"Provider {name.strip()} created.")


@router.post("/{ref}/delete")
async def delete_provider(
    request: Request, parts: PartsDep, session: AdminCsrfDep, ref: str
) -> Response:
    result = await parts.client.call(
        "config",
        "DELETE",
        f"/api/v1/providers/{safe_segment(ref)}",
        session.credential.get_secret_value(),
    )
    return _outcome(request, parts, result, "Provider deleted.")


@router.post("/{ref}/test")
async def test_provider(
    request: Request, parts: PartsDep, session: AdminCsrfDep, ref: str
) -> Response:
    result = await parts.client.call(
        "config",
        "POST",
        f"/api/v1/providers/{safe_segment(ref)}/test",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    d = result.data
    kind = "success" if d.get("ok") else "error"
    found = d.get("models")
    extra = f", {len(found)} models found" if isinstance(found, list) else ""
    msg = f"{d.get('provider')}: {d.get('status')} in {float(d.get('latency_ms', 0)):.0f} ms{extra}"
    return toast(parts, request, kind, msg)
