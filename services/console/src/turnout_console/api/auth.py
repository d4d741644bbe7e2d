"""Sign-in by pasting an admin token or a virtual key, sign-out, and the home redirect."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from turnout_console.deps import CSRF_FIELD, CsrfDep, PartsDep
from turnout_console.forms import Secret
from turnout_console.sessions import COOKIE, Role, SessionStore

router = APIRouter()
LOGIN_CSRF = "turnout_console_login"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login")
async def login_page(request: Request, parts: PartsDep, expired: int = 0) -> Response:
    token = secrets.token_urlsafe(32)
    note = "Your session has ended; sign in again." if expired else None
    resp = parts.templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": token, "note": note, "error": None, "sso": parts.settings.console_oidc_enabled},
    )
    resp.set_cookie(
        LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(request), path="/login"
    )
    return resp


async def _classify(parts: PartsDep, credential: str) -> tuple[Role, str, str | None] | None:
    """Admin if config-api lets it list providers; a user if the router takes it as a key."""
    admin = await parts.client.call(
        "config", "GET", "/api/v1/providers", credential, params={"limit": 1}
    )
    if admin.ok:
        return "admin", "admin", None
    user = await parts.client.call("router", "GET", "/v1/models", credential)
    if not user.ok:
        return None
    # a key lists its own keys (config-api self-service): that names the user
    mine = await parts.client.call("config", "GET", "/api/v1/keys", credential, params={"limit": 1})
    if mine.ok and isinstance(mine.data, dict) and mine.data.get("data"):
        user_id = str(mine.data["data"][0]["user_id"])
        return "user", user_id, user_id
    return "user", "key …" + credential[-4:], None


@router.post("/login")
async def login(
    request: Request,
    parts: PartsDep,
    token: Secret,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return parts.templates.TemplateResponse(
            request,
            "login.html",
            {"csrf": "", "note": None, "error": "The form expired: reload the page."},
            403,
        )
    credential = token.strip()
    found = await _classify(parts, credential) if credential else None
    if found is None:
        fresh = secrets.token_urlsafe(32)
        resp = parts.templates.TemplateResponse(
            request,
            "login.html",
            {
                "csrf": fresh,
                "note": None,
                "error": "That is neither an admin token nor a valid virtual key.",
            },
            401,
        )
        resp.set_cookie(
            LOGIN_CSRF,
            fresh,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/login",
        )
        return resp
    role, label, user_id = found
    session = parts.store.create(role, credential, label, user_id)
    done = RedirectResponse("/", status_code=303)
    _set_session_cookie(done, request, parts.store, session.id)
    done.delete_cookie(LOGIN_CSRF, path="/login")
    return done


def _set_session_cookie(resp: Response, request: Request, store: SessionStore, sid: str) -> None:
    resp.set_cookie(
        COOKIE,
        sid,
        max_age=int(store.ttl_s),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


@router.post("/logout")
async def logout(parts: PartsDep, session: CsrfDep) -> Response:
    parts.store.delete(session.id)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/")
async def home(request: Request, parts: PartsDep) -> Response:
    session = parts.store.get(request.cookies.get(COOKIE))
    if session is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/providers" if session.role == "admin" else "/me", status_code=303)
