"""``turnout.alerts.v1`` -> delivery rows: one per alert and webhook that wants it.

A consumer group of its own reads the topic; a batch's rows are inserted in one transaction
and the offsets committed after it (a redelivered alert adds nothing: the rows are unique per
event and webhook). An unreadable record is logged and skipped. Sending is the delivery
worker's job, so nothing here waits on a webhook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from turnout_common.consumer_loop import GroupConsumer
from turnout_common.events import AlertEvent
from turnout_common.settings import KafkaSettings
from turnout_metering.alerts import repository
from turnout_metering.alerts.webhooks import Target

log = logging.getLogger(__name__)


class AlertFanout(GroupConsumer):
    """Reads turnout.alerts.v1 in a group and queues a delivery per alert and target."""

    task_name = "metering:alert-fanout"

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        group: str,
        pool: asyncpg.Pool,
        global_targets: list[Target],
        on_enqueued: Callable[[], None],
    ) -> None:
        super().__init__(
            kafka, topic, group=group, client_suffix="metering-alerts", offset_reset="earliest"
        )
        self._pool = pool
        self._global = global_targets
        self._on_enqueued = on_enqueued
        self.seen = 0

    async def run(self) -> None:
        consumer = self.consumer
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            alerts: list[AlertEvent] = []
            for records in batch.values():
                for rec in records:
                    try:
                        alerts.append(AlertEvent.from_bytes(rec.value or b""))
                    except ValidationError as exc:
                        log.error("unreadable alert at %s@%d skipped: %s", rec.topic,
                                  rec.offset, exc)  # fmt: skip
            if not batch:
                continue
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    targets = self._global + await repository.stored_targets(conn)
                    added = await repository.enqueue(conn, alerts, targets)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("alert fan-out failed (%s); reading the batch again", exc)
                for tp, records in batch.items():
                    if records:
                        consumer.seek(tp, records[0].offset)
                await asyncio.sleep(1.0)
                continue
            try:
                await consumer.commit(
                    {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
                )
            except KafkaError as exc:
                log.warning("alert offsets not committed (%s); they come again", exc)
            self.seen += len(alerts)
            if added:
                self._on_enqueued()
