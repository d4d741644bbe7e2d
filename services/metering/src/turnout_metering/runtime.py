"""Everything the running service holds: pool, config state, credit service, tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import asyncpg

from turnout_common.broker import Producer, ensure_topics
from turnout_common.db import create_pool, ping
from turnout_common.errors import ConfigurationError
from turnout_common.events import ConfigEvent, utcnow
from turnout_common.follow import ConfigFollower
from turnout_common.migrations import migrate_dsn
from turnout_common.outbox import OutboxRelay
from turnout_common.tasks import cancel
from turnout_common.topics import ALL_TOPICS, Topic
from turnout_metering import metrics
from turnout_metering.alerts import budget
from turnout_metering.alerts.consumer import AlertFanout
from turnout_metering.alerts.delivery import DeliveryWorker
from turnout_metering.alerts.lag import LagWatch
from turnout_metering.alerts.webhooks import global_targets
from turnout_metering.clock import Clock, SystemClock
from turnout_metering.config_state import ConfigState, Subject
from turnout_metering.credits.service import CreditService
from turnout_metering.settings import MeteringSettings
from turnout_metering.usage.consumer import UsageConsumer
from turnout_metering.usage.partitions import Partitions
from turnout_metering.usage.service import Ingestor

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from turnout_metering.tracing import MeteringTracing

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        settings: MeteringSettings,
        clock: Clock | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """``tracer_provider`` turns tracing on (else the ``OTEL_*`` environment may)."""
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.schema = settings.metering_schema
        self.config = ConfigState()
        self.config.on_change = self._config_changed
        self._dirty: set[Subject] = set()
        self._dirty_event = asyncio.Event()
        self._syncing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: asyncpg.Pool | None = None
        self._credits: CreditService | None = None
        self.consumer: UsageConsumer | None = None
        self.follower: ConfigFollower | None = None
        self.relay: OutboxRelay | None = None
        self._producer: Producer | None = None
        self.partitions = Partitions(
            self.schema,
            settings.usage_partition,
            settings.usage_partitions_ahead,
            settings.usage_retention_days,
        )
        self.lag_watch = LagWatch(settings.alert_metering_lag_max)
        self.alert_fanout: AlertFanout | None = None
        self.deliveries: DeliveryWorker | None = None
        self.tracing: MeteringTracing | None = None
        if tracer_provider is not None or settings.tracing_requested():
            from turnout_metering.tracing import MeteringTracing

            self.tracing = MeteringTracing.create(settings, tracer_provider)

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "runtime not started"
        return self._pool

    @property
    def credits(self) -> CreditService:
        assert self._credits is not None, "runtime not started"
        return self._credits

    def _config_changed(self, subjects: set[Subject]) -> None:
        self._dirty |= subjects
        self._dirty_event.set()

    def _apply_config(self, event: ConfigEvent) -> None:
        self.config.apply(event)

    async def start(self, *, consume: bool | None = True) -> None:
        """DB, migrations, topics, outbox relay; then config and the consumer.

        ``consume=None`` (serving) bootstraps config and starts consuming in the background,
        retrying until config-api answers; ``/readyz`` stays 503 until then.
        """
        s = self.settings
        if s.admin_token is None:
            raise ConfigurationError("TURNOUT_ADMIN_TOKEN is required (config snapshot auth)")
        from turnout_metering.migrations import migrations

        dsn = s.database_url.get_secret_value()
        await migrate_dsn(dsn, self.schema, migrations(), outbox=True)
        self._pool = await create_pool(
            dsn, schema=self.schema, min_size=s.db_pool_min, max_size=s.db_pool_max
        )
        self._credits = CreditService(
            self._pool, self.schema, self.config, self.clock, s.credit_topic, s.alerts_topic
        )
        await self.maintain_partitions()
        own = {s.usage_topic, s.credit_topic, s.billing_topic, s.alerts_topic}
        topics = [t for t in ALL_TOPICS if t.name in own or t.name == "turnout.config.v1"]
        topics += [Topic(n, 4, False, "metering") for n in own - {t.name for t in ALL_TOPICS}]
        await ensure_topics(s.kafka, topics)
        self._producer = Producer(s.kafka, client_id=f"{s.kafka.client_id}-metering")
        await self._producer.start()
        self.relay = OutboxRelay(
            self._pool, self.schema, self._producer.send_outbox, service="metering"
        )
        self._spawn(self.relay.run(), "outbox-relay")
        self._spawn(self._partition_loop(), "usage-partitions")
        await self._start_alerts()
        if consume is None:  # serving: bootstrap config in the background, keep retrying
            self._spawn(self._bootstrap_forever(), "bootstrap")
        else:
            await self._bootstrap(consume=consume)

    async def _bootstrap(self, *, consume: bool) -> None:
        """Config snapshot + topic, then this period's rollover, then (optionally) consume."""
        s = self.settings
        assert s.admin_token is not None
        self.follower = ConfigFollower(
            s.kafka,
            s.config_url,
            s.admin_token.get_secret_value(),
            self._apply_config,
            snapshot_timeout_s=s.snapshot_timeout_s,
            tracing=self.tracing,
        )
        try:
            await self.follower.start()
        except BaseException:
            await self.follower.stop()
            self.follower = None
            raise
        await self.credits.rollover()
        self._spawn(self._sync_loop(), "credit-sync")
        self._spawn(self._period_loop(), "period-rollover")
        if consume:
            await self.start_consumer()

    async def _bootstrap_forever(self) -> None:
        while True:
            try:
                await self._bootstrap(consume=True)
                return
            except Exception as exc:
                log.warning("config bootstrap failed (%s); retrying in 2s", exc)
                await asyncio.sleep(2.0)

    async def _start_alerts(self) -> None:
        """Webhook delivery of turnout.alerts.v1 (its own consumer group and task)."""
        s = self.settings
        targets = global_targets(s.alert_webhooks)
        self.deliveries = DeliveryWorker(
            self.pool,
            targets,
            utcnow,  # wall time, like the database's now() the rows are due by
            attempts=s.alert_delivery_attempts,
            backoff_s=s.alert_delivery_backoff_s,
            timeout_s=s.alert_delivery_timeout_s,
            on_result=lambda result: metrics.ALERT_DELIVERIES.labels(result).inc(),
        )
        self.deliveries.start()
        self.alert_fanout = AlertFanout(
            s.kafka, s.alerts_topic, s.alert_group, self.pool, targets, self.deliveries.wake
        )
        await self.alert_fanout.start()

    async def maintain_partitions(self) -> None:
        """usage_log partitions ahead, and retention; the gauges say where raw rows begin."""
        async with self.pool.acquire() as conn:
            await self.partitions.maintain(conn, self.clock.now())
            spans = await self.partitions.spans(conn)
        metrics.USAGE_PARTITIONS.set(len(spans))
        if spans:
            metrics.USAGE_RAW_SINCE.set(spans[0].lo.timestamp())

    async def _partition_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.usage_maintenance_s)
            try:
                await self.maintain_partitions()
            except Exception:
                log.exception("usage partition maintenance failed; retrying next round")

    async def check_lag(self) -> None:
        """The metering_lag alert (once per crossing of TURNOUT_ALERT_METERING_LAG_MAX)."""
        if self.consumer is None:
            return
        alert = self.lag_watch.check(self.consumer.lag())
        if alert is not None:
            async with self.pool.acquire() as conn, conn.transaction():
                await budget.publish(conn, self.schema, self.settings.alerts_topic, [alert])
            metrics.ALERTS.labels("metering").inc()

    async def _lag_loop(self) -> None:
        """The lag alert, and the budget gauge the Prometheus rules read."""
        while True:
            await asyncio.sleep(self.settings.alert_lag_check_s)
            try:
                await self.check_lag()
                async with self.pool.acquire() as conn:
                    found = await budget.counts(conn, self.credits.period())
                for (kind, level), n in found.items():
                    metrics.BUDGET_SUBJECTS.labels(kind, level).set(n)
            except Exception:
                log.exception("metering lag / budget check failed")

    async def start_consumer(self) -> UsageConsumer:
        ingestor = self.ingestor()
        self.consumer = UsageConsumer(self.settings, ingestor, tracing=self.tracing)
        await self.consumer.start()
        self._spawn(self._lag_loop(), "lag-alert")
        return self.consumer

    def ingestor(self) -> Ingestor:
        return Ingestor(
            self.pool, self.schema, self.credits, self.settings.billing_topic, self.partitions
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"metering:{name}"))

    async def _sync_loop(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            subjects, self._dirty = self._dirty, set()
            self._syncing = True
            try:
                await self.credits.sync(subjects)
            except Exception:
                log.exception("credit sync failed; retrying")
                self._dirty |= subjects
                self._dirty_event.set()
                await asyncio.sleep(1.0)
            finally:
                self._syncing = False

    async def _period_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metering_period_check_s)
            try:
                await self.credits.rollover()
            except Exception:
                log.exception("period rollover failed; retrying")

    async def idle(self) -> None:
        """Wait until pending config-triggered credit syncs are done (tests, shutdown)."""
        while self._dirty or self._dirty_event.is_set() or self._syncing:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def ready(self) -> dict[str, bool]:
        return {
            "database": self._pool is not None and await ping(self._pool),
            "consumer": self.consumer is not None and self.consumer.running,
            "config": self.follower is not None and self.follower.running,
        }

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.alert_fanout is not None:
            await self.alert_fanout.stop()
        if self.deliveries is not None:
            await self.deliveries.stop()
        await cancel(*self._tasks)
        self._tasks.clear()
        if self.follower is not None:
            await self.follower.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self.tracing is not None:
            self.tracing.shutdown()
