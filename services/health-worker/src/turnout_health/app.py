"""App factory: settings, lifespan wiring of the followers, prober, relay and API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI

from turnout_common.broker import Producer, ensure_topics
from turnout_common.crypto import KeyRing
from turnout_common.db import create_pool, ping
from turnout_common.errors import ConfigurationError
from turnout_common.events import ConfigEvent
from turnout_common.follow import ConfigFollower
from turnout_common.migrations import migrate_dsn
from turnout_common.oidc import OidcSettings, OidcVerifier, oidc_settings
from turnout_common.outbox import OutboxRelay
from turnout_common.outbox_api import outbox_router
from turnout_common.settings import CommonSettings
from turnout_common.tasks import cancel
from turnout_common.topics import ALERTS, CONFIG, HEALTH, USAGE
from turnout_common.web import ReadinessCheck, ops_router, service_app
from turnout_health import api, override_api, repository
from turnout_health.deps import AppState, require_admin
from turnout_health.leader import LeaderLease
from turnout_health.passive import UsageConsumer
from turnout_health.prober import Prober
from turnout_health.registry import ConfigRegistry
from turnout_health.service import HealthService
from turnout_health.settings import HealthSettings
from turnout_health.worker import Worker

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from turnout_health.tracing import HealthTracing

log = logging.getLogger(__name__)


def create_app(
    settings: CommonSettings | None = None,
    health: HealthSettings | None = None,
    oidc: OidcSettings | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """``oidc`` defaults to ``settings`` (if it carries ``oidc_*``), else ``TURNOUT_OIDC_*``.
    ``tracer_provider`` turns tracing on (else the ``OTEL_*`` environment may): probes, the
    health events they cause, the API's requests and the config follower are traced."""
    settings = settings or CommonSettings(service_name="health-worker")
    health = health or HealthSettings()
    verifier = OidcVerifier.from_settings(oidc or oidc_settings(settings))
    checks: dict[str, ReadinessCheck] = {}
    tracing: HealthTracing | None = None
    if tracer_provider is not None or settings.tracing_requested():
        from turnout_health.tracing import HealthTracing

        tracing = HealthTracing.from_settings(settings, tracer_provider, "turnout_health")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if tracing is not None:
                stack.callback(tracing.shutdown)  # last: after every traced task stopped
            await _start(app, stack, settings, health, checks, verifier, tracing)
            yield

    app = service_app(
        "turnout-health-worker",
        "Turnout's provider health: every provider's status, circuit, latency and probe "
        "history, from active probes and the router's passive signals (admins only).",
        lifespan,
        service="health-worker",
        tracing=tracing,
    )

    def current_checks() -> Mapping[str, ReadinessCheck]:
        return checks

    app.include_router(ops_router(current_checks))
    app.include_router(api.router)
    app.include_router(override_api.router)
    app.include_router(
        outbox_router(lambda r: getattr(r.app.state, "outbox_relay", None), require_admin)
    )
    return app


async def _start(
    app: FastAPI,
    stack: contextlib.AsyncExitStack,
    settings: CommonSettings,
    health: HealthSettings,
    checks: dict[str, ReadinessCheck],
    oidc: OidcVerifier | None,
    tracing: HealthTracing | None = None,
) -> None:
    from turnout_health.migrations import migrations

    if settings.admin_token is None:
        raise ConfigurationError(
            "TURNOUT_ADMIN_TOKEN is required: the health worker fetches the config snapshot"
            " with it and accepts it on its admin API"
        )
    keys = settings.encryption_key_list()
    keyring = KeyRing(keys) if keys else None
    if keyring is None:
        log.warning("TURNOUT_ENCRYPTION_KEYS is not set: providers with API keys stay 'unknown'")
    dsn, schema, kafka = (
        settings.database_url.get_secret_value(),
        health.schema_name,
        settings.kafka,
    )
    await migrate_dsn(dsn, schema, migrations(), outbox=True)
    pool = await create_pool(
        dsn, schema=schema, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    stack.push_async_callback(pool.close)
    await ensure_topics(kafka, [CONFIG, HEALTH, USAGE, ALERTS])

    producer = Producer(kafka, client_id=f"{kafka.client_id}-health")
    await producer.start()
    stack.push_async_callback(producer.stop)
    relay = OutboxRelay(
        pool, schema, producer.send_outbox, poll_interval=0.5, service="health-worker"
    )
    relay_task = _background(stack, relay.run())
    app.state.outbox_relay = relay

    registry = ConfigRegistry()

    def on_config(event: ConfigEvent) -> None:
        registry.apply(event)

    follower = ConfigFollower(
        kafka,
        settings.config_url,
        settings.admin_token.get_secret_value(),
        on_config,
        name="health-config",
        snapshot_timeout_s=settings.snapshot_timeout_s,
        tracing=tracing,
    )
    await follower.start()
    stack.push_async_callback(follower.stop)

    async def flush(counts: list[repository.PassiveCount]) -> None:
        async with pool.acquire() as conn:
            await repository.add_passive(conn, counts)

    usage = UsageConsumer(kafka, health.usage_group, flush, health.passive_flush_s)
    await usage.start()
    stack.push_async_callback(usage.stop)

    client = httpx.AsyncClient(follow_redirects=False)
    stack.push_async_callback(client.aclose)
    service = HealthService(pool, schema, health)
    prober = Prober(pool, service, registry, health, keyring, client, tracing)
    worker = Worker(LeaderLease(dsn, schema), service, prober, health)
    worker.start()
    stack.push_async_callback(worker.stop)

    async def db_ok() -> bool:
        return await ping(pool)

    async def config_ok() -> bool:
        return follower.running

    async def relay_ok() -> bool:
        return not relay_task.done() and not relay.stuck()

    checks.update(database=db_ok, config=config_ok, outbox_relay=relay_ok)
    app.state.turnout = AppState(settings, health, pool, registry, oidc)
    app.state.worker = worker
    app.state.usage = usage
    app.state.service = service


def _background(
    stack: contextlib.AsyncExitStack, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    task = asyncio.create_task(coro)
    stack.push_async_callback(cancel, task)
    return task
