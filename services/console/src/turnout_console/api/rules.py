"""Routing rules (admin, seed 004): the list in priority order (lower runs first), create,
edit, delete, and reorder by moving a rule above or below its neighbour."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from turnout_common.errors import ValidationFailed
from turnout_console.client import ApiResult
from turnout_console.deps import AdminCsrfDep, AdminDep, PartsDep
from turnout_console.views import safe_segment, toast

router = APIRouter(prefix="/rules")
PRIORITY_MIN, PRIORITY_MAX = -1_000_000, 1_000_000


async def _rules(parts: PartsDep, cred: str) -> tuple[list[dict[str, Any]], str | None]:
    result = await parts.client.call("config", "GET", "/api/v1/routing-rules", cred)
    if not result.ok:
        return [], result.message
    return result.data["data"], None


@router.get("")
async def rules_page(request: Request, parts: PartsDep, session: AdminDep) -> Response:
    rules, error = await _rules(parts, session.credential.get_secret_value())
    return parts.templates.TemplateResponse(
        request, "rules.html", {"session": session, "rules": rules, "error": error}
    )


@router.get("/table")
async def rules_table(request: Request, parts: PartsDep, session: AdminDep) -> Response:
    rules, error = await _rules(parts, session.credential.get_secret_value())
    return parts.templates.TemplateResponse(
        request, "partials/rules_table.html", {"rules": rules, "error": error}
    )


@router.get("/new")
async def new_form(request: Request, parts: PartsDep, _: AdminDep) -> Response:
    return parts.templates.TemplateResponse(request, "partials/rule_form.html", {"r": None})


@router.get("/{ref}/edit")
async def edit_form(request: Request, parts: PartsDep, session: AdminDep, ref: str) -> Response:
    result = await parts.client.call(
        "config",
        "GET",
        f"/api/v1/routing-rules/{safe_segment(ref)}",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    return parts.templates.TemplateResponse(request, "partials/rule_form.html", {"r": result.data})


Opt = Annotated[str, Form(max_length=200)]


def _optional_int(value: str, name: str) -> int | None:
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(f"{name}: a whole number", param=name) from None


def _body(
    name: str,
    priority: str,
    weight: str,
    enabled: str,
    power_level: str,
    tier: str,
    task_type: str,
    model: str,
    min_tokens: str,
    max_tokens: str,
    requires_byok: str,
    targets: str,
) -> dict[str, Any]:
    """The rule as config-api takes it: blank match fields are ``null`` (match anything);
    config-api validates every value."""
    names = [t.strip() for t in targets.replace("\n", ",").split(",") if t.strip()]
    return {
        "name": name.strip(),
        "priority": _optional_int(priority, "priority") or 0,
        "weight": _optional_int(weight, "weight") if weight.strip() else 1,
        "enabled": enabled == "on",
        "power_level": power_level or None,
        "tier": tier.strip() or None,
        "task_type": task_type.strip() or None,
        "model": model.strip() or None,
        "min_tokens": _optional_int(min_tokens, "min_tokens"),
        "max_tokens": _optional_int(max_tokens, "max_tokens"),
        "requires_byok": requires_byok == "on",
        "targets": names,
    }


def _outcome(request: Request, parts: PartsDep, result: ApiResult, done: str) -> Response:
    if result.ok:
        return toast(parts, request, "success", done, trigger="rules-changed")
    return toast(parts, request, "error", result.message, status=result.status or 502)


@router.post("")
async def save_rule(
    request: Request,
    parts: PartsDep,
    session: AdminCsrfDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    targets: Annotated[str, Form(min_length=1, max_length=4000)],
    rule_id: Annotated[str, Form(max_length=200)] = "",
    priority: Annotated[str, Form(max_length=12)] = "100",
    weight: Annotated[str, Form(max_length=12)] = "1",
    enabled: Annotated[str, Form(max_length=5)] = "",
    power_level: Annotated[Literal["", "eco", "balanced", "precision"], Form()] = "",
    tier: Opt = "",
    task_type: Opt = "",
    model: Opt = "",
    min_tokens: Annotated[str, Form(max_length=12)] = "",
    max_tokens: Annotated[str, Form(max_length=12)] = "",
    requires_byok: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Create (no ``rule_id``) or replace every field of an existing rule."""
    body = _body(
        name, priority, weight, enabled, power_level, tier, task_type, model,
        min_tokens, max_tokens, requires_byok, targets,
    )  # fmt: skip
    cred = session.credential.get_secret_value()
    if rule_id:
        path = f"/api/v1/routing-rules/{safe_segment(rule_id)}"
        result = await parts.client.call("config", "PATCH", path, cred, json=body)
        return _outcome(request, parts, result, f"Rule {body['name']} saved.")
    result = await parts.client.call("config", "POST", "/api/v1/routing-rules", cred, json=body)
    return _outcome(request, parts, result, f"Rule {body['name']} created.")


@router.post("/{ref}/delete")
async def delete_rule(
    request: Request, parts: PartsDep, session: AdminCsrfDep, ref: str
) -> Response:
    result = await parts.client.call(
        "config",
        "DELETE",
        f"/api/v1/routing-rules/{safe_segment(ref)}",
        session.credential.get_secret_value(),
    )
    return _outcome(request, parts, result, "Rule deleted.")


@router.post("/{ref}/move")
async def move_rule(
    request: Request,
    parts: PartsDep,
    session: AdminCsrfDep,
    ref: str,
    direction: Annotated[Literal["up", "down"], Form()],
) -> Response:
    """Swap priorities with the neighbour above (``up``) or below; when both share a
    priority, the moved rule goes one past it. Lower priority runs first."""
    cred = session.credential.get_secret_value()
    rules, error = await _rules(parts, cred)
    if error:
        return toast(parts, request, "error", error, status=502)
    at = next((i for i, r in enumerate(rules) if r["id"] == ref), None)
    if at is None:
        return toast(
            parts,
            request,
            "error",
            "That rule is gone; the list is refreshed.",
            status=404,
            trigger="rules-changed",
        )
    other = at - 1 if direction == "up" else at + 1
    if not 0 <= other < len(rules):
        return toast(
            parts,
            request,
            "error",
            f"{rules[at]['name']} is already {'first' if direction == 'up' else 'last'}.",
            status=409,
        )
    me, them = rules[at], rules[other]
    mine, theirs = them["priority"], me["priority"]
    if mine == theirs:
        mine = theirs - 1 if direction == "up" else theirs + 1
        mine = max(PRIORITY_MIN, min(PRIORITY_MAX, mine))
    for rule, prio in ((me, mine), (them, theirs)):
        if rule["priority"] == prio:
            continue
        path = f"/api/v1/routing-rules/{safe_segment(rule['id'])}"
        result = await parts.client.call("config", "PATCH", path, cred, json={"priority": prio})
        if not result.ok:
            return _outcome(request, parts, result, "")
    return _outcome(request, parts, ApiResult(200, None), f"{me['name']} moved {direction}.")
