"""FastAPI glue shared by the admin-plane services: error rendering and ops endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from turnout_common.apidocs import install_api_docs
from turnout_common.asgi import ApiMiddleware
from turnout_common.errors import TurnoutError, ValidationFailed
from turnout_common.metrics import HttpMetricsMiddleware
from turnout_common.settings import CommonSettings
from turnout_common.telemetry import METRICS_CONTENT_TYPE, metrics_payload

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig

    from turnout_common.tracing import ServiceTracing

ReadinessCheck = Callable[[], Awaitable[bool]]

FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False}
"""``FastAPI(telemetry=…)`` for Turnout's apps: FastAPI's own request spans stay off. They
start by themselves once a global tracer provider is set (as ``setup_tracing`` does) and
would duplicate :func:`install_tracing`'s SERVER spans, which follow the services' switch
(``tracer_provider`` / ``OTEL_*``) and carry the context on to Kafka."""

S = TypeVar("S", bound=CommonSettings)

_HTTP_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(exc: TurnoutError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers or None)


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error in OpenAI's JSON error shape with the right status."""

    async def on_turnout(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, TurnoutError)
        return error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        first = errors[0].get("loc", ()) if errors else ()
        param = ".".join(str(p) for p in first if p not in ("body", "query", "path")) or None
        return error_response(ValidationFailed(_describe(errors), param=param))

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        body = {
            "error": {
                "message": str(exc.detail),
                "type": _HTTP_TYPES.get(exc.status_code, "invalid_request_error"),
                "param": None,
                "code": None,
            }
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(TurnoutError, on_turnout)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def install_http_metrics(app: FastAPI, service: str) -> None:
    """Count every request as ``turnout_http_requests_total`` / ``..._duration_seconds``."""
    app.add_middleware(HttpMetricsMiddleware, service=service)


def install_tracing(app: FastAPI, tracing: ServiceTracing | None) -> None:
    """A SERVER span per request (:class:`turnout_common.tracing.TracingMiddleware`) when
    ``tracing`` is on; nothing (and no OpenTelemetry import) when it is None. Install it after
    :func:`install_http_metrics` and before ``ApiMiddleware`` (which copies the scope)."""
    if tracing is not None:
        from turnout_common.tracing import TracingMiddleware

        app.add_middleware(TracingMiddleware, tracing=tracing)


def service_app(
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    *,
    service: str,
    tracing: ServiceTracing | None,
    version: str = "0.1.0",
) -> FastAPI:
    """An admin-plane service's app, before its routers: the API reference from local assets
    (:func:`~turnout_common.apidocs.install_api_docs`; FastAPI's own docs and request spans
    stay off), errors in OpenAI's shape, HTTP metrics as ``service``, a SERVER span per request
    when ``tracing`` is on, and ``ApiMiddleware`` outermost (request ids, control characters
    refused, curl-style JSON bodies)."""
    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_api_docs(app, description)
    install_error_handlers(app)
    install_http_metrics(app, service)
    install_tracing(app, tracing)
    app.add_middleware(ApiMiddleware)
    return app


def ops_router(
    checks: Mapping[str, ReadinessCheck] | Callable[[], Mapping[str, ReadinessCheck]],
) -> APIRouter:
    """``/healthz`` (process alive), ``/readyz`` (every check passes) and ``/metrics``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> Response:
        current = checks() if callable(checks) else checks
        results = {name: await check() for name, check in current.items()}
        ok = all(results.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": results},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(metrics_payload(), media_type=METRICS_CONTENT_TYPE)

    return router


MAX_OFFSET = 2_000_000_000
"""The largest ``offset`` a list endpoint takes (bigger ones are 422, not a database error)."""
MAX_HEADER_BYTES = 64 * 1024
"""The most a request's line and headers may take on the admin plane."""


def serve(create_app: Callable[[S], FastAPI], settings: S, *, port: int, service: str) -> None:
    """Run an admin-plane service under uvicorn until SIGTERM/SIGINT (``turnout serve``)."""
    import uvicorn

    from turnout_common.logs import setup_logging

    setup_logging(settings.log_level, json=settings.log_json, service=service)
    # h11 bounds what a client may send before a request is complete (headers included):
    # a 1 MB header gets 400 instead of being buffered (httptools has no such bound)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=port,
        log_level="warning",
        http="h11",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
