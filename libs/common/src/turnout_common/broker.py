"""Kafka helpers: consumers with every timeout from settings, a plain producer, topic creation.

Importing this module imports neither faststream nor OpenTelemetry (about a second and 10 MB),
so the data plane can use :class:`Producer`, :func:`ensure_topics` and :func:`wait_for_broker`.

Written against the Kafka protocol. On the Tansu broker used in dev and tests, idempotent
producers and transactions are unavailable (SPEC §4), so exactly-once *effects* come from
idempotent consumers; every timeout that Tansu makes slow is a setting (``KafkaSettings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from turnout_common.settings import KafkaSettings
from turnout_common.topics import ALL_TOPICS, Topic

if TYPE_CHECKING:
    from turnout_common.outbox import OutboxRecord

log = logging.getLogger(__name__)


def consumer_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Group/fetch timeouts for subscribers and consumers, from settings."""
    return {
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
    }


def make_consumer(
    settings: KafkaSettings,
    *topics: str,
    group_id: str | None,
    client_suffix: str,
    **kwargs: Any,
) -> AIOKafkaConsumer:
    """An aiokafka consumer with manual commits and every timeout taken from ``settings``.

    ``group_id=None`` reads without a consumer group (followers assign partitions themselves).
    """
    options: dict[str, Any] = {
        **settings.client_options(),
        "client_id": f"{settings.client_id}-{client_suffix}",
        "group_id": group_id,
        "enable_auto_commit": False,
        "request_timeout_ms": settings.request_timeout_ms,
        **consumer_kwargs(settings),
    }
    options.update(kwargs)
    return AIOKafkaConsumer(*topics, **options)


class Producer:
    """A thin aiokafka producer: send many records, return after every ack."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        client_id: str | None = None,
        max_batch_size: int = 256 * 1024,
    ) -> None:
        self._producer = AIOKafkaProducer(
            **settings.client_options(),
            client_id=client_id or settings.client_id,
            acks="all",
            linger_ms=settings.linger_ms,
            request_timeout_ms=settings.request_timeout_ms,
            max_batch_size=max_batch_size,
            enable_idempotence=False,
        )
        self._started = False

    async def start(self) -> None:
        """Connect; if that fails, the client is closed before the error propagates."""
        try:
            await self._producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            raise
        self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        await self._producer.send_and_wait(topic, value, key=key, headers=list(headers) or None)

    async def send_many(
        self,
        records: Iterable[tuple[str, bytes | None, bytes | None, Sequence[tuple[str, bytes]]]],
    ) -> None:
        """(topic, key, value, headers) records; raises if any is not acknowledged."""
        futures = [
            await self._producer.send(t, v, key=k, headers=list(h) or None)
            for t, k, v, h in records
        ]
        await asyncio.gather(*futures)

    async def send_outbox(self, records: Sequence[OutboxRecord]) -> None:
        """Adapter for :class:`turnout_common.outbox.OutboxRelay`."""
        await self.send_many(
            (r.topic, r.key, r.payload, [(k, v.encode()) for k, v in r.headers.items()])
            for r in records
        )


async def ensure_topics(settings: KafkaSettings, topics: Iterable[Topic] = ALL_TOPICS) -> None:
    """Create missing topics (idempotent; safe when several services start at once)."""
    admin = AIOKafkaAdminClient(
        **settings.client_options(), request_timeout_ms=settings.request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if t.compacted else {},
            )
            for t in topics
            if t.name not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def wait_for_broker(settings: KafkaSettings, timeout: float = 20.0) -> None:
    """Block until the broker answers metadata requests."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        admin = AIOKafkaAdminClient(**settings.client_options(), request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await admin.close()


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop an aiokafka consumer. Its fetcher's close awaits the fetch task it cancelled, so
    a fetch that was retrying (e.g. after a request timeout) leaks a CancelledError out of
    ``stop()``; swallow that one, never a cancellation of the caller itself."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("kafka consumer: a cancelled fetch surfaced while stopping; ignored")
