"""OIDC sign-in routes: ``/auth/oidc/start`` sends the browser to the identity provider,
``/auth/oidc/callback`` takes it back, checks it is an admin and opens the usual session."""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from turnout_console.api.auth import LOGIN_CSRF, _secure, _set_session_cookie
from turnout_console.deps import PartsDep
from turnout_console.oidc import (
    FLOW_COOKIE,
    FLOW_TTL_S,
    Flow,
    OidcClient,
    OidcError,
    token_expiry,
    token_label,
)

router = APIRouter()
log = logging.getLogger(__name__)
DONE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta http-equiv="refresh" content="0;url=/"><title>Signed in</title></head>'
    '<body><p>Signed in. <a href="/">Continue to the console</a>.</p></body></html>'
)
"""The callback answers 200 and lets the page move on: a same-site navigation, so the
SameSite=Strict session cookie is sent (a redirect chain begun at the provider would not)."""


def _refuse(request: Request, parts: PartsDep, message: str, status: int) -> Response:
    """The sign-in page with ``message``, a fresh form token, and the flow cookie gone."""
    fresh = secrets.token_urlsafe(32)
    resp = parts.templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": fresh, "note": None, "error": message, "sso": parts.settings.console_oidc_enabled},
        status,
    )
    resp.set_cookie(
        LOGIN_CSRF, fresh, httponly=True, samesite="strict", secure=_secure(request), path="/login"
    )
    resp.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
    return resp


def _client(request: Request, parts: PartsDep) -> OidcClient | None:
    if not parts.settings.console_oidc_enabled:
        return None
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        client = OidcClient(parts.settings)
        request.app.state.oidc = client
    return client


@router.get("/auth/oidc/start")
async def start(request: Request, parts: PartsDep) -> Response:
    client = _client(request, parts)
    if client is None:
        return _refuse(request, parts, "Single sign-on is not configured.", 404)
    flow = Flow.new()
    try:
        url = await client.authorize_url(flow)
    except OidcError as exc:
        log.warning("oidc sign-in could not start: %s", exc)
        return _refuse(request, parts, f"Single sign-on is unavailable: {exc}.", 502)
    resp = RedirectResponse(url, status_code=303)
    resp.set_cookie(
        FLOW_COOKIE,
        request.app.state.oidc_signer.dump(flow),
        max_age=FLOW_TTL_S,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/auth/oidc",
    )
    return resp


@router.get("/auth/oidc/callback")
async def callback(
    request: Request,
    parts: PartsDep,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    client = _client(request, parts)
    if client is None:
        return _refuse(request, parts, "Single sign-on is not configured.", 404)
    if error:
        shown = error if error.replace("_", "").isalnum() and len(error) <= 64 else "error"
        return _refuse(request, parts, f"The identity provider did not sign you in ({shown}).", 401)
    flow = request.app.state.oidc_signer.load(request.cookies.get(FLOW_COOKIE))
    if flow is None or not state or not secrets.compare_digest(state, flow.state):
        return _refuse(
            request, parts, "The sign-in could not be verified (state mismatch): try again.", 400
        )
    if not code or len(code) > 4096:
        return _refuse(request, parts, "The identity provider sent no authorization code.", 400)
    try:
        token = await client.exchange(code, flow)
    except OidcError as exc:
        log.warning("oidc token exchange failed: %s", exc)
        return _refuse(request, parts, f"Single sign-on failed: {exc}.", exc.status)
    admin = await parts.client.call(
        "config", "GET", "/api/v1/providers", token, params={"limit": 1}
    )
    if not admin.ok:
        return _refuse(
            request,
            parts,
            "Your single sign-on account is not a Turnout admin; ask an operator for the admin "
            "role, or paste a virtual key.",
            403,
        )
    session = parts.store.create("admin", token, token_label(token), None, token_expiry(token))
    done = HTMLResponse(DONE)
    _set_session_cookie(done, request, parts.store, session.id)
    done.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
    return done
