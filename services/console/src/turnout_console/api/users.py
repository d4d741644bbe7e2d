"""End-user pages (signed in with a virtual key): my usage, and what is not available yet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from turnout_console.deps import PartsDep, SessionDep

router = APIRouter()


@router.get("/me")
async def my_page(request: Request, parts: PartsDep, session: SessionDep) -> Response:
    cred = session.credential.get_secret_value()
    usage = await parts.client.call("metering", "GET", "/api/v1/usage", cred, params={"limit": 20})
    keys = await parts.client.call("config", "GET", "/api/v1/keys", cred, params={"limit": 100})
    rows = usage.data.get("data", []) if usage.ok and isinstance(usage.data, dict) else []
    return parts.templates.TemplateResponse(
        request,
        "me.html",
        {
            "session": session,
            "usage": rows,
            "usage_error": None if usage.ok else usage.message,
            "keys": keys.data.get("data", []) if keys.ok and isinstance(keys.data, dict) else None,
        },
    )
