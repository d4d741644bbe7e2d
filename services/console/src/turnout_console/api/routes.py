"""Routes (admin): one card per purpose with its model, the provider's health, fallbacks."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView
from turnout_console.forms import Name

router = APIRouter(prefix="/routes")
PURPOSES = ("chat", "embeddings", "reranking")
CHOICES = 200
"""Enabled models offered per purpose (the first by name; a select of 10,000 helps nobody)."""


def _status(provider: dict[str, Any]) -> str:
    health = provider.get("health") or {}
    return str(health.get("status") or "unknown")


@router.get("")
async def routes_page(ctx: AdminView) -> Response:
    per_purpose = {"limit": CHOICES, "enabled": "true"}
    routes, providers, *lists = await asyncio.gather(  # at once: independent reads
        ctx.get("config", "/api/v1/routes"),
        # only enabled providers' health matters for a choice (and 10,000 disabled ones
        # should not make the page slow)
        ctx.get("config", "/api/v1/providers", limit=500, enabled_only="true"),
        *(ctx.get("config", "/api/v1/models", **per_purpose, purpose=p) for p in PURPOSES),
    )
    health = {p["id"]: _status(p) for p in providers.data["data"]} if providers.ok else {}
    current = {r["purpose"]: r for r in routes.data["data"]} if routes.ok else {}
    choices: dict[str, dict[str, list[dict[str, Any]]]] = {p: defaultdict(list) for p in PURPOSES}
    by_name: dict[str, dict[str, Any]] = {}
    for purpose, listed in zip(PURPOSES, lists, strict=True):
        for m in listed.data["data"] if listed.ok else []:
            m["health"] = health.get(m["provider_id"], "unknown")
            by_name[m["name"]] = m
            choices[purpose][m["provider_name"]].append(m)
    cards = []
    for purpose in PURPOSES:
        route = current.get(purpose)
        model = by_name.get(route["model"]) if route else None
        cards.append(
            {
                "purpose": purpose,
                "route": route,
                "model": model,
                "groups": sorted(choices[purpose].items()),
                # the current model and fallbacks stay chosen even when not among those offered
                "offered": {m["name"] for ms in choices[purpose].values() for m in ms},
            }
        )
    error = next((r.message for r in (routes, providers, *lists) if not r.ok), None)
    return ctx.render("routes.html", {"session": ctx.session, "cards": cards, "error": error})


@router.post("/{purpose}")
async def save_route(
    ctx: AdminAct,
    purpose: Literal["chat", "embeddings", "reranking"],
    model: Name,
    fallbacks: Annotated[list[str] | None, Form(max_length=20)] = None,
) -> Response:
    chain = [f for f in (fallbacks or []) if f and f != model]
    tail = f" (fallbacks: {', '.join(chain)})" if chain else ""
    body = {"model": model, "fallbacks": chain}
    done = f"{purpose} now routes to {model}{tail}."
    return await ctx.act("config", "PUT", f"/api/v1/routes/{purpose}", done, json=body)
