"""Small helpers shared by the pages: toasts, page windows, the provider kinds."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from turnout_common.provider_kinds import KINDS as PROVIDER_KINDS

if TYPE_CHECKING:
    from turnout_console.client import ApiResult, Service
    from turnout_console.deps import Parts

KINDS = ("openai_compatible", *(k for k in PROVIDER_KINDS if k != "openai_compatible"))
"""What config-api accepts as ``kind`` (:mod:`turnout_common.provider_kinds`; config-api
validates, this fills the select, the generic kind first)."""


def page_window(page: int, total: int, size: int) -> dict[str, Any]:
    pages = max(1, -(-total // size))
    return {"page": min(page, pages), "pages": pages}


async def fetch_page(
    parts: Parts,
    service: Service,
    path: str,
    credential: str,
    params: dict[str, Any],
    page: int,
    size: int,
) -> tuple[ApiResult, dict[str, Any]]:
    """One page of a list API (``{data, total}``) and its window: ``rows``, ``total``,
    ``page``, ``pages``. A page past the end (``?page=999``, or the last row of the last page
    deleted meanwhile) is the last page, asked for again, not an empty table."""

    async def get(page: int) -> ApiResult:
        offset = (page - 1) * size
        return await parts.client.call(
            service, "GET", path, credential, params={**params, "limit": size, "offset": offset}
        )

    result = await get(page)
    if result.ok:
        last = page_window(page, int(result.data.get("total", 0)), size)["page"]
        if last < page:
            page = last
            result = await get(page)
    if not result.ok:
        return result, {"rows": [], "total": 0, "page": page, "pages": 1}
    total = int(result.data.get("total", 0))
    return result, {"rows": result.data["data"], "total": total, **page_window(page, total, size)}


def filter_state(filters: dict[str, Any]) -> dict[str, Any]:
    """A page's filters and the query string that keeps them (the pager's links)."""
    return {"filters": filters, "query": urlencode({k: v for k, v in filters.items() if v})}


def toast(
    parts: Parts,
    request: Request,
    kind: str,
    message: str,
    *,
    status: int = 200,
    trigger: str | None = None,
) -> Response:
    """A toast appended to #toasts (htmx); ``trigger`` fires an event pages listen to."""
    headers = {"HX-Retarget": "#toasts", "HX-Reswap": "beforeend"}
    if trigger:
        headers["HX-Trigger"] = json.dumps({trigger: True, "turnout-close-dialogs": True})
    return parts.templates.TemplateResponse(
        request, "partials/toast.html", {"kind": kind, "message": message}, status, headers
    )


def safe_segment(ref: str) -> str:
    """An id for a URL path segment: letters, digits and ``-_.:`` only (no path tricks)."""
    from turnout_common.errors import ValidationFailed

    if not ref or ref in (".", "..") or not all(c.isalnum() or c in "-_.:" for c in ref):
        raise ValidationFailed("not a valid id")
    return ref
