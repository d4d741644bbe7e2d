"""The testing lab (seed 002), for admins and end users: a model picker (or ``auto`` with a
power level), the gateway's prompt templates, a composer, the answer streamed in as it
arrives, then tokens, latency, time to first token and (from metering) the exact cost; the
lab's history and per-model stats.

A lab request is an ordinary data-plane request (routed, limited and billed) sent with
``x-turnout-source: lab``. The router takes virtual keys only: an end user's runs use their
own key; an admin types the key to send as for each run (it is never stored or shown)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response, StreamingResponse

from turnout_common.errors import ValidationFailed
from turnout_console.api.context import Ctx, UserAct, UserView
from turnout_console.forms import Name, PowerLevel, Secret
from turnout_console.lab_stream import relay
from turnout_console.views import safe_segment

router = APIRouter(prefix="/lab")
PAGE = 10
MAX_POLLS = 20
PICKER_MAX = 200


async def _templates(ctx: Ctx) -> tuple[list[dict[str, Any]] | None, str]:
    result = await ctx.get("config", "/api/v1/lab/templates")
    if result.ok and isinstance(result.data, dict):
        return result.rows, ""
    if result.status in (401, 403):
        return None, (
            "The gateway does not offer the lab templates to a virtual key yet (its "
            "self-service API is still to come); write your own prompt below."
        )
    return None, f"The templates could not be loaded: {result.message}"


async def _models(ctx: Ctx) -> list[str]:
    """Chat models the picker suggests (any name can be typed): the router's list for a
    key, the catalog's chat models for an admin."""
    if ctx.session.role == "user":
        result = await ctx.get("router", "/v1/models")
        return sorted({str(r.get("id")) for r in result.rows if r.get("id")})[:PICKER_MAX]
    result = await ctx.get(
        "config", "/api/v1/models", purpose="chat", sort="name", limit=PICKER_MAX
    )
    return sorted({str(r["name"]) for r in result.rows if r.get("name")})


async def _history(ctx: Ctx, page: int) -> dict[str, Any]:
    _, window = await ctx.paged("metering", "/api/v1/lab/history", {}, page, PAGE)
    return window


async def _stats(ctx: Ctx) -> dict[str, Any]:
    result = await ctx.get("metering", "/api/v1/lab/stats", group_by="model")
    if not result.ok:
        return {"stats": [], "totals": None, "stats_error": result.message}
    return {"stats": result.data["data"], "totals": result.data["totals"], "stats_error": None}


PageQ = Annotated[int, Query(ge=1, le=100_000)]


@router.get("")
async def lab_page(ctx: UserView) -> Response:
    (templates, templates_note), models, history, stats = await asyncio.gather(
        _templates(ctx), _models(ctx), _history(ctx, 1), _stats(ctx)
    )
    return ctx.render(
        "lab.html",
        {
            "session": ctx.session,
            "lab_templates": templates,
            "templates_note": templates_note,
            "models": models,
            "history": history,
            **stats,
        },
    )


@router.get("/history")
async def lab_history(ctx: UserView, page: PageQ = 1) -> Response:
    history, stats = await asyncio.gather(_history(ctx, page), _stats(ctx))
    context = {"session": ctx.session, "history": history, **stats}
    return ctx.render("partials/lab_history.html", context)


@router.get("/result/{request_id}")
async def lab_result(
    ctx: UserView,
    request_id: str,
    model: Annotated[str, Query(max_length=200)] = "",
    poll: Annotated[int, Query(ge=0, le=MAX_POLLS)] = 0,
) -> Response:
    """The run's usage record once metering has it (the page polls this about once a
    second): its exact cost, as billed. Once found, the history and stats refresh."""
    rid = safe_segment(request_id)
    result = await ctx.get("metering", "/api/v1/lab/history", model=model or None, limit=50)
    record = next((r for r in result.rows if r.get("request_id") == rid), None)
    return ctx.render(
        "partials/lab_result.html",
        {
            "record": record,
            "rid": rid,
            "model": model,
            "poll": poll + 1,
            "gave_up": record is None and poll >= MAX_POLLS,
            "error": None if result.ok else result.message,
        },
        headers={"HX-Trigger": "lab-ran"} if record else None,
    )


Text = Annotated[str, Form(max_length=32_000)]


@router.post("/run")
async def lab_run(
    ctx: UserAct,
    prompt: Annotated[str, Form(min_length=1, max_length=32_000)],
    model: Name = "auto",
    system: Text = "",
    power_level: PowerLevel = "",
    template: Annotated[str, Form(max_length=64)] = "",
    temperature: Annotated[float, Form(ge=0, le=2)] = 0.7,
    max_tokens: Annotated[int, Form(ge=1, le=32_768)] = 512,
    key: Secret = "",
) -> Response:
    """Streams the answer (text/event-stream); see :mod:`turnout_console.lab_stream`."""
    if ctx.session.role == "admin":
        if not key.strip():
            raise ValidationFailed(
                "key: the router takes virtual keys only; paste the key to send as", param="key"
            )
        credential = key.strip()
    else:
        credential = ctx.credential
    messages = [{"role": "system", "content": system}] if system.strip() else []
    messages.append({"role": "user", "content": prompt})
    body = {
        "model": model.strip(),
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    headers = {"x-turnout-source": "lab"}
    if power_level:
        headers["x-power-level"] = power_level
    if template:
        headers["x-task-type"] = safe_segment(template)
    return StreamingResponse(
        relay(ctx.parts.client, credential, body, headers),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
