"""Follow a topic from every replica (no consumer group): bootstrap, then apply each event.

:class:`TopicFollower` reads a compacted state topic (health, credit) from the beginning.
:class:`ConfigFollower` bootstraps from config-api's snapshot and then follows
``turnout.config.v1``: it records the topic's end offsets *before* fetching the snapshot, so
no change committed after the snapshot can be missed; events the snapshot already holds are
recognised by their per-entity revision and skipped by the consumer's state (idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from turnout_common.events import ConfigEvent
from turnout_common.settings import KafkaSettings
from turnout_common.topics import CONFIG

log = logging.getLogger(__name__)

Handler = Callable[[bytes | None, bytes | None], Awaitable[None] | None]
"""Called with (key, value) for every record; value None is a tombstone."""


class TopicFollower:
    """Reads every partition of one topic, from the beginning (or the end), forever."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        handler: Handler,
        *,
        from_beginning: bool = True,
        name: str = "follower",
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._handler = handler
        self._from_beginning = from_beginning
        self._name = name
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.running = False
        self.records = 0

    async def start(self) -> None:
        """Connect and position; :meth:`run` (or :meth:`start_background`) then consumes."""
        s = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap,
            client_id=f"{s.client_id}-{self._name}",
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            request_timeout_ms=s.request_timeout_ms,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        if self._from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the lazy seek now, before any snapshot is taken
                await consumer.position(tp)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        for _ in range(100):
            parts = consumer.partitions_for_topic(self._topic)
            if parts:
                return [TopicPartition(self._topic, p) for p in sorted(parts)]
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {self._topic} does not exist")

    async def run(self) -> None:
        assert self._consumer is not None, "start() first"
        self.running = True
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=1000)
                for records in batches.values():
                    for rec in records:
                        try:
                            result = self._handler(rec.key, rec.value)
                            if inspect.isawaitable(result):
                                await result
                        except Exception:
                            log.exception(
                                "%s: failed to apply a %s record", self._name, self._topic
                            )
                        self.records += 1
        finally:
            self.running = False

    def start_background(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"{self._name}:{self._topic}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def fetch_snapshot(
    config_url: str, token: str, *, retries: int = 50, delay: float = 0.2
) -> dict[str, Any]:
    """``GET {config_url}/api/v1/snapshot`` with retries (config-api may still be starting)."""
    url = config_url.rstrip("/") + "/api/v1/snapshot"
    headers = {"Authorization": f"Bearer {token}"}
    last: Exception | None = None
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(retries):
            try:
                async with session.get(url, headers=headers) as resp:
                    if resp.status == 200:
                        data: dict[str, Any] = await resp.json()
                        return data
                    last = RuntimeError(f"snapshot: HTTP {resp.status}")
                    if resp.status in (401, 403):
                        raise last
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = exc
            await asyncio.sleep(delay)
    raise RuntimeError(f"could not fetch the config snapshot from {url}: {last}")


ConfigHandler = Callable[[ConfigEvent], Awaitable[None] | None]


class ConfigFollower:
    """Snapshot + ``turnout.config.v1``; calls ``handler`` with :class:`ConfigEvent` s.

    Snapshot entities arrive as ``op="upsert"`` events carrying their own revision.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        config_url: str,
        token: str,
        handler: ConfigHandler,
        *,
        name: str = "config",
    ) -> None:
        self._config_url = config_url
        self._token = token
        self._handler = handler
        self._follower = TopicFollower(
            settings, CONFIG.name, self._on_record, from_beginning=False, name=name
        )
        self.snapshot_revision: int | None = None

    @property
    def running(self) -> bool:
        return self._follower.running

    async def _apply(self, event: ConfigEvent) -> None:
        result = self._handler(event)
        if inspect.isawaitable(result):
            await result

    async def _on_record(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return  # compaction tombstones carry no revision; delete events carry op=delete
        await self._apply(ConfigEvent.model_validate_json(value))

    async def start(self) -> None:
        await self._follower.start()  # end offsets recorded BEFORE the snapshot
        snap = await fetch_snapshot(self._config_url, self._token)
        for item in snap.get("entities", []):
            await self._apply(ConfigEvent.model_validate(item))
        self.snapshot_revision = int(snap.get("revision", 0))
        self._follower.start_background()

    async def stop(self) -> None:
        await self._follower.stop()
