"""App factory: settings, the session store, the API client, templates, static files, pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from turnout_common.errors import TurnoutError, ValidationFailed
from turnout_common.web import FASTAPI_TELEMETRY, install_http_metrics, ops_router
from turnout_common.web import _describe as describe_errors
from turnout_console.api import (
    admin_users,
    audit,
    auth,
    catalog,
    health,
    lab,
    model_actions,
    models,
    my_keys,
    my_provider_keys,
    oidc,
    provider_actions,
    providers,
    routes,
    rules,
    tiers,
    usage,
    user_settings,
    users,
)
from turnout_console.client import ApiClient
from turnout_console.deps import Parts, SignInRequired
from turnout_console.oidc import FlowSigner
from turnout_console.security import SecurityHeaders
from turnout_console.sessions import SessionStore
from turnout_console.settings import ConsoleSettings

HERE = Path(__file__).parent


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def create_app(
    settings: ConsoleSettings | None = None, store: SessionStore | None = None
) -> FastAPI:
    """``store`` lets a test drive the session clock; otherwise sessions use wall time."""
    cfg = settings or ConsoleSettings()
    templates = Jinja2Templates(directory=HERE / "templates")
    parts = Parts(cfg, store or SessionStore(cfg.console_session_ttl_s), ApiClient(cfg), templates)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await parts.client.start()
        try:
            yield
        finally:
            await parts.client.close()

    app = FastAPI(
        title="turnout-console",
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.parts = parts
    app.state.oidc_signer = FlowSigner()

    async def on_sign_in(request: Request, _: Exception) -> Response:
        if _is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": "/login?expired=1"})
        return RedirectResponse("/login?expired=1", status_code=303)

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TurnoutError)
        name = "partials/toast.html" if _is_htmx(request) else "error.html"
        headers = {"HX-Retarget": "#toasts", "HX-Reswap": "beforeend"} if _is_htmx(request) else {}
        return templates.TemplateResponse(
            request, name, {"kind": "error", "message": exc.message}, exc.status, headers
        )

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return await on_error(request, ValidationFailed(describe_errors(list(exc.errors()))))

    app.add_exception_handler(SignInRequired, on_sign_in)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(TurnoutError, on_error)
    app.include_router(ops_router({}))
    app.include_router(auth.router)
    app.include_router(oidc.router)
    app.include_router(providers.router)
    app.include_router(provider_actions.router)
    app.include_router(users.router)
    app.include_router(my_keys.router)
    app.include_router(my_provider_keys.router)
    app.include_router(catalog.router)
    app.include_router(models.router)
    app.include_router(model_actions.router)
    app.include_router(routes.router)
    app.include_router(rules.router)
    app.include_router(admin_users.router)
    app.include_router(user_settings.router)
    app.include_router(tiers.router)
    app.include_router(usage.router)
    app.include_router(audit.router)
    app.include_router(health.router)
    app.include_router(lab.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    install_http_metrics(app, "console")
    app.add_middleware(SecurityHeaders)
    return app
