"""An end user's own keys (self-service, config-api ``/keys`` with their key): create one
(the secret shown once) and revoke one. Listing is on the My usage page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import Ctx, UserAct, UserView
from turnout_console.views import safe_segment

router = APIRouter(prefix="/me/keys")


async def own_keys(ctx: Ctx) -> list[dict[str, Any]] | None:
    """The caller's keys (None when config-api does not list them)."""
    keys = await ctx.get("config", "/api/v1/keys", limit=100)
    return keys.rows if keys.ok and isinstance(keys.data, dict) else None


async def create_key(ctx: Ctx, user_id: str, name: str, trigger: str) -> Response:
    """A new key for ``user_id``: its secret goes into this one answer and nowhere else
    (never a log, never a later page)."""
    body = {"user_id": user_id, "name": name}
    result = await ctx.call("config", "POST", "/api/v1/keys", json=body)
    if not result.ok:
        return ctx.failed(result)
    headers = {"HX-Trigger": trigger}
    return ctx.render("partials/key_created.html", {"key": result.data}, headers=headers)


async def revoke_key(ctx: Ctx, key_id: str, trigger: str) -> Response:
    path = f"/api/v1/keys/{safe_segment(key_id)}"
    return await ctx.act("config", "DELETE", path, "Key revoked.", trigger=trigger)


@router.get("")
async def my_keys(ctx: UserView) -> Response:
    """The caller's keys (a partial of the My usage page)."""
    keys = await own_keys(ctx)
    return ctx.render("partials/my_keys.html", {"session": ctx.session, "keys": keys})


@router.post("")
async def create_my_key(
    ctx: UserAct, name: Annotated[str, Form(min_length=1, max_length=100)]
) -> Response:
    if ctx.session.user_id is None:
        return ctx.toast("error", "Your user id is not known: ask an admin.", status=409)
    return await create_key(ctx, ctx.session.user_id, name.strip(), "keys-changed")


@router.post("/{key_id}/revoke")
async def revoke_my_key(ctx: UserAct, key_id: str) -> Response:
    return await revoke_key(ctx, key_id, "keys-changed")
