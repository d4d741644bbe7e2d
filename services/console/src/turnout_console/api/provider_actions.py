"""Providers (admin), one provider at a time: the edit dialog (a typed key replaces the
stored one and is never shown again), test connection and model discovery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import Response

from turnout_console.api.context import AdminAct, AdminView, Ctx
from turnout_console.api.providers import CHANGED
from turnout_console.client import ApiResult
from turnout_console.schemas import ProviderEditForm
from turnout_console.views import KINDS, safe_segment

router = APIRouter(prefix="/providers")


@router.get("/{ref}/edit")
async def edit_form(ctx: AdminView, ref: str) -> Response:
    """The edit dialog's form, filled from config-api (which never returns the key)."""
    path = f"/api/v1/providers/{safe_segment(ref)}"
    return await ctx.dialog("config", path, "partials/provider_edit.html", "p", kinds=KINDS)


@router.post("/{ref}")
async def update_provider(
    ctx: AdminAct, ref: str, form: Annotated[ProviderEditForm, Form()]
) -> Response:
    """A PATCH of what the form shows; the key only when one was typed (it replaces the old)."""
    replaced = " Its key was replaced." if form.api_key else ""
    path = f"/api/v1/providers/{safe_segment(ref)}"
    done = f"Provider {form.name.strip()} saved.{replaced}"
    return await ctx.act("config", "PATCH", path, done, json=form.body(), trigger=CHANGED)


@router.post("/{ref}/test")
async def test_provider(ctx: AdminAct, ref: str) -> Response:
    result = await ctx.call("config", "POST", f"/api/v1/providers/{safe_segment(ref)}/test")
    return probe_toast(ctx, result, count_models=True)


@router.post("/{ref}/discover")
async def discover(ctx: AdminAct, ref: str) -> Response:
    path = f"/api/v1/providers/{safe_segment(ref)}/discover"
    return await ctx.act("config", "POST", path, _discovered, trigger=CHANGED)


def _discovered(d: dict[str, Any]) -> str:
    added, priced, unpriced = (len(d.get(k, [])) for k in ("added", "priced", "disabled_unpriced"))
    return (
        f"{d.get('provider')}: {d.get('discovered')} models found, {added} added "
        f"({priced} priced from the price table, {unpriced} disabled until priced), "
        f"{len(d.get('already_present', []))} already in the catalog."
    )


def probe_toast(ctx: Ctx, result: ApiResult, *, count_models: bool) -> Response:
    """A provider test's answer as a toast: status and latency, the models it listed (when
    ``count_models``) and, when the test failed, why (an error toast)."""
    if not result.ok:
        return ctx.failed(result)
    d = result.data
    msg = f"{d.get('provider')}: {d.get('status')} in {float(d.get('latency_ms', 0)):.0f} ms"
    found = d.get("models")
    if count_models and isinstance(found, list):
        msg += f", {len(found)} models found"
    if not d.get("ok"):
        return ctx.toast("error", f"{msg}: {d.get('message')}")
    return ctx.toast("success", msg)
