"""Models (admin): the catalog with filters, sort, prices per 1M tokens, add, enable/disable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView, Ctx
from turnout_console.schemas import ModelForm
from turnout_console.views import safe_segment

router = APIRouter(prefix="/models")
CHANGED = "models-changed"
"""The event the models table refreshes on."""
PAGE = 10
SortQ = Annotated[str, Query(pattern="^-?(name|price|context_length)$")]


async def _providers(ctx: Ctx) -> list[dict[str, Any]]:
    """The first 100 providers by name: suggestions for the provider fields (any name or id
    can be typed, so 10,000 providers do not make a 10,000-option select)."""
    result = await ctx.get("config", "/api/v1/providers", limit=100, sort="name")
    return result.data["data"] if result.ok else []


Str = Annotated[str | None, Query(max_length=200)]
PurposeQ = Annotated[Literal["chat", "embeddings", "reranking", ""] | None, Query()]
CapQ = Annotated[Literal["streaming", "tools", "vision", "json_mode", ""] | None, Query()]
BoolQ = Annotated[Literal["true", "false", ""] | None, Query()]
PageQ = Annotated[int, Query(ge=1, le=100_000_000)]


def _filters(
    provider: Str = None,
    purpose: PurposeQ = None,
    capability: CapQ = None,
    search: Str = None,
    deprecated: BoolQ = None,
    sort: SortQ = "name",
) -> dict[str, Any]:
    return {
        "provider": provider or None,
        "purpose": purpose or None,
        "capability": capability or None,
        "search": (search or "").strip() or None,
        "deprecated": deprecated or None,
        "sort": sort,
    }


@router.get("")
async def models_page(
    ctx: AdminView, filters: Annotated[dict[str, Any], Depends(_filters)], page: PageQ = 1
) -> Response:
    table = ctx.paged("config", "/api/v1/models", filters, page, PAGE)
    if ctx.htmx:
        (_, window), providers = await table, []
    else:  # the whole page: the table and the provider names the fields suggest, at once
        (_, window), providers = await asyncio.gather(table, _providers(ctx))
    context = {"providers": providers, "filters": filters, **window}
    return ctx.page("models.html", "partials/models_table.html", context)


@router.post("")
async def create_model(ctx: AdminAct, form: Annotated[ModelForm, Form()]) -> Response:
    done = model_named("added")
    return await ctx.act(
        "config", "POST", "/api/v1/models", done, json=form.body(), trigger=CHANGED
    )


def model_named(verb: str) -> Callable[[dict[str, Any]], str]:
    """The toast "Model {name} {verb}.", with the name config-api answered."""
    return lambda m: f"Model {m['name']} {verb}."


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
        model_named(state),
        json={"enabled": enabled == "true"},
        trigger=CHANGED,
    )
