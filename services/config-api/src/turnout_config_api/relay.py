"""The outbox relay in the background: connects to Kafka (retrying while it is down), then
relays committed config events in order. Readiness = this task is alive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from turnout_common.broker import Producer, ensure_topics
from turnout_common.outbox import OutboxRecord, OutboxRelay
from turnout_common.settings import KafkaSettings
from turnout_common.topics import CONFIG

log = logging.getLogger(__name__)


class RelaySender:
    """Sends outbox batches with one long-lived producer (aiokafka reconnects by itself).

    After a failed send the topics are ensured again before the next attempt, because a
    broker may come back empty (Tansu's memory storage). A failed batch is re-sent by the
    relay, so a record can arrive twice; consumers are idempotent by revision / event id.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: Producer | None = None
        self._topics_ok = False
        self.failures = 0

    async def connect(self) -> None:
        backoff = 0.2
        while self._producer is None:
            try:
                await self._ensure_topics()
                producer = Producer(
                    self._settings, client_id=f"{self._settings.client_id}-config-api"
                )
                await producer.start()  # closes its client itself when it fails
            except Exception as exc:
                log.warning(
                    "broker not reachable (%s); retrying in %.1fs", exc.__class__.__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._producer = producer

    async def _ensure_topics(self) -> None:
        if not self._topics_ok:
            await ensure_topics(self._settings)
            self._topics_ok = True

    async def send(self, records: Sequence[OutboxRecord]) -> None:
        if self._producer is None:
            await self.connect()
        assert self._producer is not None
        await self._ensure_topics()
        limit = 2 * self._settings.request_timeout_ms / 1000
        try:
            await asyncio.wait_for(self._producer.send_outbox(records), limit)
        except Exception:
            self._topics_ok = False
            self.failures += 1
            raise

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception as exc:
                log.debug("producer stop failed: %s", exc.__class__.__name__)


async def run_relay(relay: OutboxRelay, sender: RelaySender) -> None:
    await sender.connect()
    log.info("outbox relay started for %s", CONFIG.name)
    await relay.run()
