"""Providers (admin), one provider at a time: the edit dialog (a typed key replaces the
stored one and is never shown again), test connection and model discovery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from turnout_console.api.providers import outcome
from turnout_console.deps import AdminCsrfDep, AdminDep, PartsDep
from turnout_console.views import KINDS, safe_segment, toast

router = APIRouter(prefix="/providers")


@router.get("/{ref}/edit")
async def edit_form(request: Request, parts: PartsDep, session: AdminDep, ref: str) -> Response:
    """The edit dialog's form, filled from config-api (which never returns the key)."""
    result = await parts.client.call(
        "config",
        "GET",
        f"/api/v1/providers/{safe_segment(ref)}",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    return parts.templates.TemplateResponse(
        request, "partials/provider_edit.html", {"p": result.data, "kinds": KINDS}
    )


@router.post("/{ref}")
async def update_provider(
    request: Request,
    parts: PartsDep,
    session: AdminCsrfDep,
    ref: str,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    kind: Annotated[str, Form(max_length=40)],
    base_url: Annotated[str, Form(max_length=2000)] = "",
    api_key: Annotated[str, Form(max_length=4096)] = "",
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """A PATCH of what the form shows; the key only when one was typed (it replaces the old)."""
    body: dict[str, Any] = {"name": name.strip(), "kind": kind, "enabled": enabled == "on"}
    if base_url.strip():
        body["base_url"] = base_url.strip()
    if api_key:
        body["api_key"] = api_key
    result = await parts.client.call(
        "config",
        "PATCH",
        f"/api/v1/providers/{safe_segment(ref)}",
        session.credential.get_secret_value(),
        json=body,
    )
    replaced = " Its key was replaced." if api_key and result.ok else ""
    return outcome(request, parts, result, f"Provider {name.strip()} saved.{replaced}")


@router.post("/{ref}/test")
async def test_provider(
    request: Request, parts: PartsDep, session: AdminCsrfDep, ref: str
) -> Response:
    result = await parts.client.call(
        "config",
        "POST",
        f"/api/v1/providers/{safe_segment(ref)}/test",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    d = result.data
    kind = "success" if d.get("ok") else "error"
    found = d.get("models")
    extra = f", {len(found)} models found" if isinstance(found, list) else ""
    why = "" if d.get("ok") else f": {d.get('message')}"
    msg = f"{d.get('provider')}: {d.get('status')} in {float(d.get('latency_ms', 0)):.0f} ms"
    return toast(parts, request, kind, msg + extra + why)


@router.post("/{ref}/discover")
async def discover(request: Request, parts: PartsDep, session: AdminCsrfDep, ref: str) -> Response:
    result = await parts.client.call(
        "config",
        "POST",
        f"/api/v1/providers/{safe_segment(ref)}/discover",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    d = result.data
    added, priced, unpriced = (len(d.get(k, [])) for k in ("added", "priced", "disabled_unpriced"))
    msg = (
        f"{d.get('provider')}: {d.get('discovered')} models found, {added} added "
        f"({priced} priced from the price table, {unpriced} disabled until priced), "
        f"{len(d.get('already_present', []))} already in the catalog."
    )
    return toast(parts, request, "success", msg, trigger="providers-changed")
