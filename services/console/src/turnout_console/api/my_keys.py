"""An end user's own keys (self-service, config-api ``/keys`` with their key): create one
(the secret shown once) and revoke one. Listing is on the My usage page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from turnout_console.deps import CsrfDep, PartsDep, SessionDep
from turnout_console.views import safe_segment, toast

router = APIRouter(prefix="/me/keys")


@router.get("")
async def my_keys(request: Request, parts: PartsDep, session: SessionDep) -> Response:
    """The caller's keys (a partial of the My usage page)."""
    cred = session.credential.get_secret_value()
    keys = await parts.client.call("config", "GET", "/api/v1/keys", cred, params={"limit": 100})
    rows = keys.data.get("data", []) if keys.ok and isinstance(keys.data, dict) else None
    return parts.templates.TemplateResponse(
        request, "partials/my_keys.html", {"session": session, "keys": rows}
    )


@router.post("")
async def create_my_key(
    request: Request,
    parts: PartsDep,
    session: CsrfDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> Response:
    if session.user_id is None:
        return toast(
            parts, request, "error", "Your user id is not known: ask an admin.", status=409
        )
    result = await parts.client.call(
        "config",
        "POST",
        "/api/v1/keys",
        session.credential.get_secret_value(),
        json={"user_id": session.user_id, "name": name.strip()},
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    return parts.templates.TemplateResponse(
        request,
        "partials/key_created.html",
        {"key": result.data},
        headers={"HX-Trigger": "keys-changed"},
    )


@router.post("/{key_id}/revoke")
async def revoke_my_key(
    request: Request, parts: PartsDep, session: CsrfDep, key_id: str
) -> Response:
    result = await parts.client.call(
        "config",
        "DELETE",
        f"/api/v1/keys/{safe_segment(key_id)}",
        session.credential.get_secret_value(),
    )
    if not result.ok:
        return toast(parts, request, "error", result.message, status=result.status or 502)
    return toast(parts, request, "success", "Key revoked.", trigger="keys-changed")
