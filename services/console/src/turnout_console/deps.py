"""FastAPI dependencies: the app's parts, the signed-in session and the CSRF check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from turnout_common.errors import PermissionDenied
from turnout_console.client import ApiClient
from turnout_console.sessions import COOKIE, Session, SessionStore
from turnout_console.settings import ConsoleSettings

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


@dataclass
class Parts:
    settings: ConsoleSettings
    store: SessionStore
    client: ApiClient
    templates: Jinja2Templates


class SignInRequired(Exception):
    """No valid session: pages redirect to /login (htmx requests get HX-Redirect)."""


def get_parts(request: Request) -> Parts:
    parts: Parts = request.app.state.parts
    return parts


PartsDep = Annotated[Parts, Depends(get_parts)]


def current_session(request: Request, parts: PartsDep) -> Session:
    session = parts.store.get(request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired
    return session


SessionDep = Annotated[Session, Depends(current_session)]


def admin_session(session: SessionDep) -> Session:
    if session.role != "admin":
        raise PermissionDenied("this page needs an admin sign-in")
    return session


AdminDep = Annotated[Session, Depends(admin_session)]


async def csrf_checked(request: Request, session: SessionDep) -> Session:
    """Every state-changing request carries the session's CSRF token (header or form field)."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not session.csrf_ok(token):
        raise PermissionDenied(
            "missing or wrong CSRF token: reload the page and try again", code="csrf_failed"
        )
    return session


CsrfDep = Annotated[Session, Depends(csrf_checked)]


async def admin_csrf(session: CsrfDep) -> Session:
    if session.role != "admin":
        raise PermissionDenied("this action needs an admin sign-in")
    return session


AdminCsrfDep = Annotated[Session, Depends(admin_csrf)]
