"""One request's context for the pages: call another service as the signed-in person, then
answer with a template or a toast. Every handler's "call, on error a toast with the
service's message, on success a toast or a partial" lives here once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from turnout_console.client import ApiResult, Service
from turnout_console.deps import AdminCsrfDep, AdminDep, CsrfDep, Parts, PartsDep, SessionDep
from turnout_console.sessions import Session
from turnout_console.views import fetch_page, toast

Done = str | Callable[[Any], str]
"""A success message, or how to word it from the service's answer."""


@dataclass(frozen=True, slots=True)
class Ctx:
    request: Request
    parts: Parts
    session: Session

    @property
    def htmx(self) -> bool:
        """An htmx request (it gets a partial, not the whole page)."""
        return bool(self.request.headers.get("hx-request"))

    @property
    def credential(self) -> str:
        return self.session.credential.get_secret_value()

    async def call(self, service: Service, method: str, path: str, **send: Any) -> ApiResult:
        """``send``: ``params`` and ``json``, as :meth:`ApiClient.call` takes them."""
        return await self.parts.client.call(service, method, path, self.credential, **send)

    async def get(self, service: Service, path: str, **params: Any) -> ApiResult:
        return await self.call(service, "GET", path, params=params or None)

    async def paged(
        self, service: Service, path: str, params: dict[str, Any], page: int, size: int
    ) -> tuple[ApiResult, dict[str, Any]]:
        """:func:`~turnout_console.views.fetch_page` as the signed-in person; the window
        also carries ``error`` (the service's message, or None)."""
        result, window = await fetch_page(
            self.parts, service, path, self.credential, params, page, size
        )
        return result, {**window, "error": None if result.ok else result.message}

    def render(
        self, template: str, context: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> Response:
        return self.parts.templates.TemplateResponse(
            self.request, template, context, headers=headers
        )

    def page(self, template: str, partial: str, context: dict[str, Any]) -> Response:
        """The whole page, or only its ``partial`` for htmx; the session goes with both."""
        return self.render(partial if self.htmx else template, {"session": self.session, **context})

    def toast(
        self, kind: str, message: str, *, status: int = 200, trigger: str | None = None
    ) -> Response:
        return toast(self.parts, self.request, kind, message, status=status, trigger=trigger)

    def failed(self, result: ApiResult) -> Response:
        """The service's error as a toast, with its status (502 when it did not answer)."""
        return self.toast("error", result.message, status=result.status or 502)

    def outcome(self, result: ApiResult, done: Done, trigger: str | None = None) -> Response:
        """A success toast (firing ``trigger``) or the error's."""
        if not result.ok:
            return self.failed(result)
        message = done if isinstance(done, str) else done(result.data)
        return self.toast("success", message, trigger=trigger)

    async def act(
        self,
        service: Service,
        method: str,
        path: str,
        done: Done,
        *,
        json: Any = None,
        trigger: str | None = None,
    ) -> Response:
        """A state-changing call answered with a toast (see :meth:`outcome`)."""
        return self.outcome(await self.call(service, method, path, json=json), done, trigger)

    async def dialog(
        self, service: Service, path: str, template: str, name: str, **extra: Any
    ) -> Response:
        """An edit dialog's form filled from a GET (its answer as ``name``), or the error's
        toast."""
        result = await self.call(service, "GET", path)
        if not result.ok:
            return self.failed(result)
        return self.render(template, {name: result.data, **extra})


def _ctx(request: Request, parts: PartsDep, session: Session) -> Ctx:
    return Ctx(request, parts, session)


def _user_view(request: Request, parts: PartsDep, session: SessionDep) -> Ctx:
    return _ctx(request, parts, session)


def _user_act(request: Request, parts: PartsDep, session: CsrfDep) -> Ctx:
    return _ctx(request, parts, session)


def _admin_view(request: Request, parts: PartsDep, session: AdminDep) -> Ctx:
    return _ctx(request, parts, session)


def _admin_act(request: Request, parts: PartsDep, session: AdminCsrfDep) -> Ctx:
    return _ctx(request, parts, session)


UserView = Annotated[Ctx, Depends(_user_view)]
"""Any signed-in person reading a page."""
UserAct = Annotated[Ctx, Depends(_user_act)]
"""Any signed-in person changing something (CSRF checked)."""
AdminView = Annotated[Ctx, Depends(_admin_view)]
AdminAct = Annotated[Ctx, Depends(_admin_act)]
