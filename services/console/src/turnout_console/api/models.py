"""Models (admin): the catalog with filters, sort, prices per 1M tokens, add, enable/disable."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from turnout_console.api.context import AdminAct
from turnout_console.deps import AdminDep, PartsDep
from turnout_console.views import fetch_page, safe_segment

router = APIRouter(prefix="/models")
CHANGED = "models-changed"
"""The event the models table refreshes on."""
PAGE = 10
SortQ = Annotated[str, Query(pattern="^-?(name|price|context_length)$")]


async def _table(parts: PartsDep, cred: str, filters: dict[str, Any], page: int) -> dict[str, Any]:
    result, window = await fetch_page(parts, "config", "/api/v1/models", cred, filters, page, PAGE)
    return {"filters": filters, **window, "error": None if result.ok else result.message}


async def _providers(parts: PartsDep, cred: str) -> list[dict[str, Any]]:
    """The first 100 providers by name: suggestions for the provider fields (any name or id
    can be typed, so 10,000 providers do not make a 10,000-option select)."""
    result = await parts.client.call(
        "config", "GET", "/api/v1/providers", cred, params={"limit": 100, "sort": "name"}
    )
    return result.data["data"] if result.ok else []


def _filters(
    provider: str | None,
    purpose: str | None,
    capability: str | None,
    search: str | None,
    deprecated: str | None,
    sort: str,
) -> dict[str, Any]:
    return {
        "provider": provider or None,
        "purpose": purpose or None,
        "capability": capability or None,
        "search": (search or "").strip() or None,
        "deprecated": deprecated or None,
        "sort": sort,
    }


Str = Annotated[str | None, Query(max_length=200)]
PurposeQ = Annotated[Literal["chat", "embeddings", "reranking", ""] | None, Query()]
CapQ = Annotated[Literal["streaming", "tools", "vision", "json_mode", ""] | None, Query()]
BoolQ = Annotated[Literal["true", "false", ""] | None, Query()]
PageQ = Annotated[int, Query(ge=1, le=100_000_000)]


@router.get("")
async def models_page(
    request: Request,
    parts: PartsDep,
    session: AdminDep,
    provider: Str = None,
    purpose: PurposeQ = None,
    capability: CapQ = None,
    search: Str = None,
    deprecated: BoolQ = None,
    sort: SortQ = "name",
    page: PageQ = 1,
) -> Response:
    cred = session.credential.get_secret_value()
    filters = _filters(provider, purpose, capability, search, deprecated, sort)
    if request.headers.get("hx-request"):
        name, table, providers = (
            "partials/models_table.html",
            await _table(parts, cred, filters, page),
            [],
        )
    else:  # the whole page: the table and the provider names the fields suggest, at once
        name = "models.html"
        table, providers = await asyncio.gather(
            _table(parts, cred, filters, page), _providers(parts, cred)
        )
    return parts.templates.TemplateResponse(
        request, name, {"session": session, "providers": providers, **table}
    )


def _price(value: str, field: str) -> str:
    try:
        number = Decimal(value or "0")
    except InvalidOperation:
        number = Decimal(-1)
    if not number.is_finite() or number < 0:
        from turnout_common.errors import ValidationFailed

        raise ValidationFailed(f"{field}: a price in USD per 1M tokens, 0 or more", param=field)
    return str(number)


@router.post("")
async def create_model(
    ctx: AdminAct,
    provider: Annotated[str, Form(min_length=1, max_length=200)],
    upstream_model: Annotated[str, Form(min_length=1, max_length=300)],
    name: Annotated[str, Form(max_length=200)] = "",
    purpose: Annotated[Literal["chat", "embeddings", "reranking"], Form()] = "chat",
    input_price: Annotated[str, Form(max_length=40)] = "0",
    output_price: Annotated[str, Form(max_length=40)] = "0",
    context_window: Annotated[int | None, Form(ge=1, le=100_000_000)] = None,
) -> Response:
    body: dict[str, Any] = {
        "provider": provider,
        "upstream_model": upstream_model.strip(),
        "purposes": [purpose],
        "input_price_per_mtok": _price(input_price, "input_price"),
        "output_price_per_mtok": _price(output_price, "output_price"),
    }
    if name.strip():
        body["name"] = name.strip()
    if context_window:
        body["context_window"] = context_window
    return await ctx.act(
        "config",
        "POST",
        "/api/v1/models",
        lambda m: f"Model {m['name']} added.",
        json=body,
        trigger=CHANGED,
    )


@router.post("/{model_id}/enabled")
async def set_enabled(
    ctx: AdminAct, model_id: str, enabled: Annotated[Literal["true", "false"], Form()]
) -> Response:
    path = f"/api/v1/models/{safe_segment(model_id)}"
    state = "enabled" if enabled == "true" else "disabled"
    return await ctx.act(
        "config",
        "PATCH",
        path,
        lambda m: f"Model {m['name']} {state}.",
        json={"enabled": enabled == "true"},
        trigger=CHANGED,
    )
