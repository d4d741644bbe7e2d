"""An end user's own provider keys (BYOK, seeds 003/004): for each provider an admin opened
to BYOK, add or replace a key (a password field emptied once sent; only its hint is ever
shown), test it, remove it. Never a URL: a BYOK key goes to the provider's configured one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from turnout_console.deps import CsrfDep, PartsDep, SessionDep
from turnout_console.sessions import Session
from turnout_console.views import safe_segment, toast

router = APIRouter(prefix="/me/provider-keys")


def _base(session: Session) -> str:
    return f"/api/v1/users/{safe_segment(session.user_id or '-')}/provider-keys"


async def _context(parts: PartsDep, session: Session) -> dict[str, Any]:
    cred = session.credential.get_secret_value()
    opened = await parts.client.call("config", "GET", "/api/v1/byok/providers", cred)
    if opened.status in (404, 405):
        return {"missing": True, "rows": [], "error": None}
    if not opened.ok:
        return {"missing": False, "rows": [], "error": opened.message}
    mine = await parts.client.call("config", "GET", _base(session), cred)
    hints = {k["provider_id"]: k for k in mine.data["data"]} if mine.ok else {}
    rows = [{**p, "key": hints.get(p["provider_id"])} for p in opened.data["data"]]
    return {"missing": False, "rows": rows, "error": None if mine.ok else mine.message}


@router.get("")
async def page(request: Request, parts: PartsDep, session: SessionDep) -> Response:
    ctx = await _context(parts, session)
    name = "partials/byok_table.html" if request.headers.get("hx-request") else "provider_keys.html"
    return parts.templates.TemplateResponse(request, name, {"session": session, **ctx})


@router.post("/{provider}")
async def save(
    request: Request,
    parts: PartsDep,
    session: CsrfDep,
    provider: str,
    api_key: Annotated[str, Form(min_length=1, max_length=4096)],
) -> Response:
    result = await parts.client.call(
        "config",
        "PUT",
        f"{_base(session)}/{safe_segment(provider)}",
        session.credential.get_secret_value(),
        json={"api_key": api_key},
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    msg = f"Key for {result.data.get('provider_name')} saved ({result.data.get('api_key_hint')})."
    return toast(parts, request, "success", msg, trigger="byok-changed")


@router.post("/{provider}/test")
async def test(request: Request, parts: PartsDep, session: CsrfDep, provider: str) -> Response:
    result = await parts.client.call(
        "config",
        "POST",
        f"{_base(session)}/{safe_segment(provider)}/test",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    d = result.data
    kind = "success" if d.get("ok") else "error"
    msg = f"{d.get('provider')}: {d.get('status')} in {float(d.get('latency_ms', 0)):.0f} ms"
    return toast(parts, request, kind, msg if d.get("ok") else f"{msg}: {d.get('message')}")


@router.post("/{provider}/delete")
async def remove(request: Request, parts: PartsDep, session: CsrfDep, provider: str) -> Response:
    result = await parts.client.call(
        "config",
        "DELETE",
        f"{_base(session)}/{safe_segment(provider)}",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    return toast(parts, request, "success", "Key removed.", trigger="byok-changed")
