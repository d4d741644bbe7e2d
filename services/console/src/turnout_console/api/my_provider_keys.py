"""An end user's own provider keys (BYOK, seeds 003/004): for each provider an admin opened
to BYOK, add or replace a key (a password field emptied once sent; only its hint is ever
shown), test it, remove it. Never a URL: a BYOK key goes to the provider's configured one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import Ctx, UserAct, UserView
from turnout_console.api.provider_actions import probe_toast
from turnout_console.sessions import Session
from turnout_console.views import safe_segment

router = APIRouter(prefix="/me/provider-keys")
CHANGED = "byok-changed"


def _base(session: Session) -> str:
    return f"/api/v1/users/{safe_segment(session.user_id or '-')}/provider-keys"


async def _context(ctx: Ctx) -> dict[str, Any]:
    opened = await ctx.get("config", "/api/v1/byok/providers")
    if opened.status in (404, 405):
        return {"missing": True, "rows": [], "error": None}
    if not opened.ok:
        return {"missing": False, "rows": [], "error": opened.message}
    mine = await ctx.get("config", _base(ctx.session))
    hints = {k["provider_id"]: k for k in mine.data["data"]} if mine.ok else {}
    rows = [{**p, "key": hints.get(p["provider_id"])} for p in opened.data["data"]]
    return {"missing": False, "rows": rows, "error": None if mine.ok else mine.message}


@router.get("")
async def page(ctx: UserView) -> Response:
    return ctx.page("provider_keys.html", "partials/byok_table.html", await _context(ctx))


@router.post("/{provider}")
async def save(
    ctx: UserAct, provider: str, api_key: Annotated[str, Form(min_length=1, max_length=4096)]
) -> Response:
    path = f"{_base(ctx.session)}/{safe_segment(provider)}"
    return await ctx.act("config", "PUT", path, _saved, json={"api_key": api_key}, trigger=CHANGED)


def _saved(key: dict[str, Any]) -> str:
    return f"Key for {key.get('provider_name')} saved ({key.get('api_key_hint')})."


@router.post("/{provider}/test")
async def test(ctx: UserAct, provider: str) -> Response:
    result = await ctx.call("config", "POST", f"{_base(ctx.session)}/{safe_segment(provider)}/test")
    return probe_toast(ctx, result, count_models=False)


@router.post("/{provider}/delete")
async def remove(ctx: UserAct, provider: str) -> Response:
    path = f"{_base(ctx.session)}/{safe_segment(provider)}"
    return await ctx.act("config", "DELETE", path, "Key removed.", trigger=CHANGED)
