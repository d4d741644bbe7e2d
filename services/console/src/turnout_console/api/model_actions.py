"""Models (admin), one at a time: the edit dialog (name, purposes, prices per 1M tokens,
context window, power level, fallbacks, enabled, deprecated), sent as a PATCH."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView
from turnout_console.api.models import CHANGED
from turnout_console.forms import Checkbox, ContextWindow, Name, Number, PowerLevel, price
from turnout_console.views import safe_segment

router = APIRouter(prefix="/models")
PURPOSES = ("chat", "completion", "embeddings", "reranking")


@router.get("/{model_id}/edit")
async def edit_form(ctx: AdminView, model_id: str) -> Response:
    path = f"/api/v1/models/{safe_segment(model_id)}"
    return await ctx.dialog("config", path, "partials/model_edit.html", "m", purposes=PURPOSES)


@router.post("/{model_id}")
async def update_model(
    ctx: AdminAct,
    model_id: str,
    name: Name,
    purposes: Annotated[list[Literal["chat", "completion", "embeddings", "reranking"]], Form()],
    input_price: Number = "0",
    output_price: Number = "0",
    context_window: ContextWindow = None,
    power_level: PowerLevel = "",
    fallbacks: Annotated[str, Form(max_length=4000)] = "",
    enabled: Checkbox = "",
    deprecated: Checkbox = "",
) -> Response:
    body: dict[str, Any] = {
        "name": name.strip(),
        "purposes": purposes,
        "input_price_per_mtok": price(input_price, "input_price"),
        "output_price_per_mtok": price(output_price, "output_price"),
        "power_level": power_level or None,
        "fallbacks": [f.strip() for f in fallbacks.split(",") if f.strip()],
        "enabled": enabled == "on",
        "deprecated": deprecated == "on",
    }
    if context_window:
        body["context_window"] = context_window
    path = f"/api/v1/models/{safe_segment(model_id)}"
    return await ctx.act(
        "config",
        "PATCH",
        path,
        lambda m: f"Model {m['name']} saved.",
        json=body,
        trigger=CHANGED,
    )
