"""Models (admin), one at a time: the edit dialog (name, purposes, prices per 1M tokens,
context window, power level, fallbacks, enabled, deprecated), sent as a PATCH."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView
from turnout_console.api.models import CHANGED, model_named
from turnout_console.schemas import ModelEditForm
from turnout_console.views import safe_segment

router = APIRouter(prefix="/models")
PURPOSES = ("chat", "completion", "embeddings", "reranking")


@router.get("/{model_id}/edit")
async def edit_form(ctx: AdminView, model_id: str) -> Response:
    path = f"/api/v1/models/{safe_segment(model_id)}"
    return await ctx.dialog("config", path, "partials/model_edit.html", "m", purposes=PURPOSES)


@router.post("/{model_id}")
async def update_model(
    ctx: AdminAct, model_id: str, form: Annotated[ModelEditForm, Form()]
) -> Response:
    path = f"/api/v1/models/{safe_segment(model_id)}"
    done = model_named("saved")
    return await ctx.act("config", "PATCH", path, done, json=form.body(), trigger=CHANGED)
