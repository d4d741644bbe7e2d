"""Followers that keep :class:`RouterState` current: config (snapshot + topic), health, credit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from turnout_common.events import ConfigEvent
from turnout_common.follow import ConfigFollower, TopicFollower
from turnout_common.topics import CREDIT, HEALTH
from turnout_router.settings import RouterSettings
from turnout_router.state import RouterState

if TYPE_CHECKING:
    from turnout_common.tracing import ServiceTracing

log = logging.getLogger(__name__)
Handler = Callable[[RouterState, bytes | None, bytes | None], None]
"""One topic's message (key, value) applied to the router's state."""


def on_health(state: RouterState, _key: bytes | None, value: bytes | None) -> None:
    if value is None:
        return
    ev = orjson.loads(value)
    subject = str(ev["provider_id"])
    if ev.get("deployment_id"):
        subject += ":" + str(ev["deployment_id"])
    auto = ev.get("auto_disabled")
    latency = ev.get("latency_ms")
    if not ev.get("deployment_id"):  # the provider's own queue (vLLM), for least_busy
        state.conditions.load.set_queue(
            subject, _num(ev.get("queue_waiting")), _num(ev.get("queue_running"))
        )
    state.apply_health(
        subject,
        str(ev.get("status", "unknown")),
        str(ev.get("circuit", "closed")),
        None if auto is None else bool(auto),
        float(latency) if isinstance(latency, int | float) else None,
    )


def _num(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else None  # type: ignore[arg-type]


def on_credit(state: RouterState, _key: bytes | None, value: bytes | None) -> None:
    if value is None:
        return
    ev = orjson.loads(value)
    # what may still be spent: the budget's remainder and the prepaid balance, the smaller
    # (both are reserved against in flight, so concurrent requests cannot overspend either)
    room = [float(v) for v in (ev.get("remaining_usd"), ev.get("balance_usd")) if v is not None]
    state.apply_credit(
        f"{ev['subject_type']}:{ev['subject_id']}",
        int(ev.get("seq") or 0),
        bool(ev.get("blocked", False)),
        min(room) if room else None,
        float(ev.get("spent_usd") or 0),
        lab_blocked=bool(ev.get("lab_blocked", False)),
        lab_quota=ev.get("lab_quota") if isinstance(ev.get("lab_quota"), int) else None,
    )


class Followers:
    """Starts the three followers concurrently; ``running`` feeds ``/readyz``. With
    ``tracing``, a record carrying a trace context is applied in a CONSUMER span."""

    def __init__(
        self,
        settings: RouterSettings,
        state: RouterState,
        *,
        tracing: ServiceTracing | None = None,
    ) -> None:
        token = settings.admin_token.get_secret_value() if settings.admin_token else ""
        wait = max(settings.kafka.fetch_max_wait_ms, settings.follow_fetch_min_wait_ms)
        kafka = settings.kafka.model_copy(update={"fetch_max_wait_ms": wait})

        def on_config(event: ConfigEvent) -> None:
            state.apply_config(event)

        self.config = ConfigFollower(
            kafka,
            settings.config_url,
            token,
            on_config,
            snapshot_timeout_s=settings.snapshot_timeout_s,
            tracing=tracing,
        )

        def follow(topic: str, handle: Handler, name: str) -> TopicFollower:
            on_message = lambda k, v: handle(state, k, v)  # noqa: E731
            return TopicFollower(kafka, topic, on_message, name=name, tracing=tracing)

        self.health = follow(HEALTH.name, on_health, "router-health")
        self.credit = follow(CREDIT.name, on_credit, "router-credit")
        self._state = state

    async def start(self) -> None:
        """Start all three, each retried until it works: config-api or the broker may be down
        while this router starts (``/readyz`` says 503 meanwhile, and the router never gives
        up: a start-up failure must not leave a live but never-ready process behind)."""

        async def state_topic(f: TopicFollower) -> None:
            await f.start()
            f.start_background()

        await asyncio.gather(
            _until_started("config snapshot", self.config.start, self.config.stop),
            _until_started(HEALTH.name, lambda: state_topic(self.health), self.health.stop),
            _until_started(CREDIT.name, lambda: state_topic(self.credit), self.credit.stop),
        )
        self._state.config_loaded = True

    @property
    def running(self) -> bool:
        return self.config.running and self.health.running and self.credit.running

    async def stop(self) -> None:
        for f in (self.config, self.health, self.credit):
            try:
                await f.stop()
            except Exception:
                log.exception("stopping a follower failed")


async def _until_started(
    what: str,
    start: Callable[[], Awaitable[None]],
    cleanup: Callable[[], Awaitable[None]],
    *,
    delay_s: float = 1.0,
    max_delay_s: float = 5.0,
) -> None:
    """``start()`` until it succeeds, with backoff; ``cleanup()`` after each failure."""
    while True:
        try:
            await start()
            return
        except Exception as exc:
            log.warning("router: starting %s failed (%s); retrying in %gs", what, exc, delay_s)
            try:
                await cleanup()
            except Exception:
                log.exception("router: cleaning up after %s failed", what)
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, max_delay_s)
