"""Routing rules (admin, seed 004): the list in priority order (lower runs first), create,
edit, delete, and reorder by moving a rule above or below its neighbour."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView, Ctx
from turnout_console.schemas import RuleForm
from turnout_console.views import safe_segment

router = APIRouter(prefix="/rules")
BASE = "/api/v1/routing-rules"
CHANGED = "rules-changed"
PRIORITY_MIN, PRIORITY_MAX = -1_000_000, 1_000_000


async def _rules(ctx: Ctx) -> tuple[list[dict[str, Any]], str | None]:
    result = await ctx.get("config", BASE)
    if not result.ok:
        return [], result.message
    return result.data["data"], None


@router.get("")
async def rules_page(ctx: AdminView) -> Response:
    rules, error = await _rules(ctx)
    return ctx.render("rules.html", {"session": ctx.session, "rules": rules, "error": error})


@router.get("/table")
async def rules_table(ctx: AdminView) -> Response:
    rules, error = await _rules(ctx)
    return ctx.render("partials/rules_table.html", {"rules": rules, "error": error})


@router.get("/new")
async def new_form(ctx: AdminView) -> Response:
    return ctx.render("partials/rule_form.html", {"r": None})


@router.get("/{ref}/edit")
async def edit_form(ctx: AdminView, ref: str) -> Response:
    path = f"/api/v1/routing-rules/{safe_segment(ref)}"
    return await ctx.dialog("config", path, "partials/rule_form.html", "r")


@router.post("")
async def save_rule(ctx: AdminAct, form: Annotated[RuleForm, Form()]) -> Response:
    """Create (no ``rule_id``) or replace every field of an existing rule."""
    body = form.body()
    if form.rule_id:
        path = f"/api/v1/routing-rules/{safe_segment(form.rule_id)}"
        done = f"Rule {body['name']} saved."
        return await ctx.act("config", "PATCH", path, done, json=body, trigger=CHANGED)
    done = f"Rule {body['name']} created."
    return await ctx.act("config", "POST", BASE, done, json=body, trigger=CHANGED)


@router.post("/{ref}/delete")
async def delete_rule(ctx: AdminAct, ref: str) -> Response:
    path = f"/api/v1/routing-rules/{safe_segment(ref)}"
    return await ctx.act("config", "DELETE", path, "Rule deleted.", trigger=CHANGED)


@router.post("/{ref}/move")
async def move_rule(
    ctx: AdminAct,
    ref: str,
    direction: Annotated[Literal["up", "down"], Form()],
) -> Response:
    """Swap priorities with the neighbour above (``up``) or below; when both share a
    priority, the moved rule goes one past it. Lower priority runs first."""
    rules, error = await _rules(ctx)
    if error:
        return ctx.toast("error", error, status=502)
    at = next((i for i, r in enumerate(rules) if r["id"] == ref), None)
    if at is None:
        gone = "That rule is gone; the list is refreshed."
        return ctx.toast("error", gone, status=404, trigger=CHANGED)
    other = at - 1 if direction == "up" else at + 1
    if not 0 <= other < len(rules):
        edge = "first" if direction == "up" else "last"
        return ctx.toast("error", f"{rules[at]['name']} is already {edge}.", status=409)
    me, them = rules[at], rules[other]
    mine, theirs = them["priority"], me["priority"]
    if mine == theirs:
        mine = theirs - 1 if direction == "up" else theirs + 1
        mine = max(PRIORITY_MIN, min(PRIORITY_MAX, mine))
    for rule, prio in ((me, mine), (them, theirs)):
        if rule["priority"] == prio:
            continue
        path = f"/api/v1/routing-rules/{safe_segment(rule['id'])}"
        result = await ctx.call("config", "PATCH", path, json={"priority": prio})
        if not result.ok:
            return ctx.failed(result)
    return ctx.toast("success", f"{me['name']} moved {direction}.", trigger=CHANGED)
