"""The config-api app factory: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI, Request

from turnout_common import db
from turnout_common.crypto import KeyRing
from turnout_common.logs import setup_logging
from turnout_common.migrations import migrate_dsn
from turnout_common.oidc import OidcVerifier
from turnout_common.outbox import OutboxRelay
from turnout_common.outbox_api import outbox_router
from turnout_common.tasks import cancel
from turnout_common.web import ops_router, service_app
from turnout_config_api.api import admin, byok, catalog, keys, models, providers, routing, users
from turnout_config_api.changes import SCHEMA
from turnout_config_api.db_errors import install_db_error_handlers
from turnout_config_api.deps import AdminReadDep, get_admin_actor
from turnout_config_api.health_view import follow_health
from turnout_config_api.relay import RelaySender, run_relay
from turnout_config_api.settings import ConfigApiSettings
from turnout_config_api.state import AppState

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from turnout_common.tracing import ServiceTracing

API_PREFIX = "/api/v1"


DESCRIPTION = """Turnout's admin API: providers, the model catalog, routes and routing rules,
users, tiers, virtual keys, BYOK keys, the testing lab, admin tokens and the audit log.
Every change is one transaction with its audit entry and its config event (transactional
outbox to `turnout.config.v1`). Authorize with an admin token; a virtual key may read and
manage its own user's keys. Errors use OpenAI's shape: `{"error": {"message", "type",
"param", "code"}}`. Lists answer `{"data", "total", "limit", "offset"}` where paginated."""


def _relay(request: Request) -> OutboxRelay | None:
    state: AppState | None = getattr(request.app.state, "config_api", None)
    return None if state is None else state.relay


def create_app(
    settings: ConfigApiSettings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """Build the app; a missing/invalid ``TURNOUT_ENCRYPTION_KEYS`` fails here, at start-up.
    ``tracer_provider`` turns tracing on (else the ``OTEL_*`` environment may): a SERVER span
    per request, config events carrying its context, a CONSUMER span per traced health event."""
    settings = settings or ConfigApiSettings()
    ring = KeyRing(settings.encryption_key_list())
    tracing: ServiceTracing | None = None
    if tracer_provider is not None or settings.tracing_requested():
        from turnout_common.tracing import ServiceTracing

        tracing = ServiceTracing.from_settings(settings, tracer_provider, "turnout_config_api")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from turnout_config_api.migrations import migrations

        dsn = settings.database_url.get_secret_value()
        if settings.run_migrations:
            await migrate_dsn(dsn, SCHEMA, migrations(), outbox=True)
        pool = await db.create_pool(
            dsn, schema=SCHEMA, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        http = httpx.AsyncClient(follow_redirects=False)
        sender = RelaySender(settings.kafka)
        relay = OutboxRelay(
            pool,
            SCHEMA,
            sender.send,
            poll_interval=settings.outbox_poll_interval_s,
            service="config-api",
        )
        state = AppState(
            settings,
            ring,
            pool,
            http,
            oidc=OidcVerifier.from_settings(settings),
            relay=relay,
            sender=sender,
        )
        state.relay_task = asyncio.create_task(run_relay(relay, sender), name="config-outbox")
        state.health_task = asyncio.create_task(
            follow_health(state.health, settings.kafka, tracing=tracing),
            name="config-health-view",
        )
        app.state.config_api = state
        try:
            yield
        finally:
            await cancel(state.health_task)
            await cancel(state.relay_task)
            await sender.close()
            await http.aclose()
            await pool.close()
            if tracing is not None:
                tracing.shutdown()

    app = service_app(
        "turnout-config-api",
        DESCRIPTION,
        lifespan,
        service="config-api",
        tracing=tracing,
        version="1",
    )
    install_db_error_handlers(app)

    def checks() -> dict[str, Callable[[], Awaitable[bool]]]:
        state: AppState | None = getattr(app.state, "config_api", None)

        async def database() -> bool:
            return state is not None and await db.ping(state.pool)

        async def relay() -> bool:
            return state is not None and state.relay_alive() and not state.relay_stuck()

        return {"database": database, "outbox_relay": relay}

    app.include_router(ops_router(checks))
    app.include_router(outbox_router(_relay, get_admin_actor))
    for module in (providers, models, catalog, routing, users, keys, byok, admin):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    async def openapi(_: AdminReadDep) -> dict[str, Any]:
        return app.openapi()

    return app


def create_app_from_env() -> FastAPI:
    settings = ConfigApiSettings()
    setup_logging(settings.log_level, json=settings.log_json, service="config-api")
    return create_app(settings)
