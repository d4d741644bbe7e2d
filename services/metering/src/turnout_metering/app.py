"""App factory: settings, runtime (DB, consumer, config follower, outbox relay), routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from turnout_common.outbox_api import outbox_router
from turnout_common.web import ReadinessCheck, ops_router, service_app
from turnout_metering.api import alerts, credits, dead_letters, erasures, lab, usage
from turnout_metering.clock import Clock
from turnout_metering.deps import require_admin
from turnout_metering.runtime import Runtime
from turnout_metering.settings import MeteringSettings

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider


def _checks(runtime: Runtime) -> dict[str, ReadinessCheck]:
    async def database() -> bool:
        return (await runtime.ready())["database"]

    async def consumer() -> bool:
        c = runtime.consumer
        return c is not None and c.running and not c.stuck(runtime.settings.metering_stuck_s)

    async def config() -> bool:
        return runtime.follower is not None and runtime.follower.running

    async def outbox_relay() -> bool:
        return runtime.relay is not None and not runtime.relay.stuck()

    return {"database": database, "consumer": consumer, "config": config,
            "outbox_relay": outbox_relay}  # fmt: skip


def create_app(
    settings: MeteringSettings | None = None,
    *,
    clock: Clock | None = None,
    runtime: Runtime | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """With ``runtime`` given, the caller starts and stops it (tests); else the lifespan does.
    ``tracer_provider`` turns tracing on (else the ``OTEL_*`` environment may)."""
    owned = runtime is None
    rt = runtime or Runtime(settings or MeteringSettings(), clock, tracer_provider=tracer_provider)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owned:
            await rt.start(consume=None)
        try:
            yield
        finally:
            if owned:
                await rt.stop()

    app = service_app(
        "turnout-metering",
        "Turnout's usage ledger: usage rows (filters, pagination, CSV), summaries, credits "
        "and budgets, prepaid grants and adjustments, the lab history, records set aside "
        "(dead letters) and the outbox. Admins see everything; a virtual key its own user.",
        lifespan,
        service="metering",
        tracing=rt.tracing,  # a SERVER span per request when the runtime traces
    )
    app.state.runtime = rt
    app.include_router(ops_router(_checks(rt)))
    app.include_router(usage.router)
    app.include_router(credits.router)
    app.include_router(lab.router)
    app.include_router(dead_letters.router)
    app.include_router(erasures.router)
    app.include_router(alerts.router)
    app.include_router(outbox_router(lambda _: rt.relay, require_admin))
    return app
