"""Follow a topic from every replica (no consumer group): bootstrap, then apply each event.

:class:`TopicFollower` reads a compacted state topic (health, credit) from the beginning.
:class:`ConfigFollower` bootstraps from config-api's snapshot and then follows
``turnout.config.v1``: it records the topic's end offsets *before* fetching the snapshot, so
no change committed after the snapshot can be missed; events the snapshot already holds are
recognised by their per-entity revision and skipped by the consumer's state (idempotent).

With ``tracing`` (a service that traces), each record that carries a W3C trace context in its
headers is handled inside a CONSUMER ``process <topic>`` span, that context's child
(:meth:`turnout_common.tracing.ServiceTracing.consuming`); records that were already in the
topic when the follower started reading it (history replayed at start or re-read) get none,
so a restart adds no spans to old traces. Without tracing a record costs one ``is None``
check more.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from turnout_common.broker import make_consumer
from turnout_common.consumer_loop import Reader
from turnout_common.events import ConfigEvent
from turnout_common.http1 import HttpClient, HttpClientError
from turnout_common.metrics import SKIPPED_RECORDS
from turnout_common.settings import KafkaSettings
from turnout_common.topics import CONFIG

if TYPE_CHECKING:
    from turnout_common.tracing import ServiceTracing

log = logging.getLogger(__name__)

Handler = Callable[[bytes | None, bytes | None], Awaitable[None] | None]
"""Called with (key, value) for every record; value None is a tombstone."""


class TopicFollower(Reader):
    """Reads every partition of one topic, from the beginning (or the end), forever."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        handler: Handler,
        *,
        from_beginning: bool = True,
        name: str = "follower",
        metadata_max_age_ms: int = 10_000,
        tracing: ServiceTracing | None = None,
    ) -> None:
        self._settings = settings
        self._tracing = tracing
        self._metadata_max_age_ms = metadata_max_age_ms
        self._topic = topic
        self._handler = handler
        self._from_beginning = from_beginning
        self._name = name
        self.task_name = f"{name}:{topic}"
        self._consumer = None
        self._task = None
        self.running = False
        self.records = 0
        self._replay_end: dict[TopicPartition, int] = {}
        """With tracing: per partition, where the records read again from the beginning end
        (those were handled, and traced, before; they get no second span)."""

    async def start(self) -> None:
        """Connect and position; :meth:`run` (or :meth:`start_background`) then consumes."""
        consumer = make_consumer(
            self._settings,
            group_id=None,
            client_suffix=self._name,
            auto_offset_reset="earliest",
            metadata_max_age_ms=self._metadata_max_age_ms,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        if self._from_beginning:
            await consumer.seek_to_beginning(*partitions)
            await self._note_replay(partitions)
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
        tracing = self._tracing
        self.running = True
        try:
            while True:
                await self._follow_new_partitions()
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=1000)
                for tp, records in batches.items():
                    replayed = self._replay_end.get(tp, 0) if tracing is not None else 0
                    for rec in records:
                        try:
                            if tracing is not None and rec.offset >= replayed:
                                await self._traced(tracing, rec)
                            else:
                                result = self._handler(rec.key, rec.value)
                                if inspect.isawaitable(result):
                                    await result
                        except Exception:
                            SKIPPED_RECORDS.labels(self._name, self._topic).inc()
                            log.exception(
                                "%s: failed to apply the %s record at %d@%d; skipped",
                                self._name, self._topic, rec.partition, rec.offset,
                            )  # fmt: skip
                        self.records += 1
        finally:
            self.running = False

    async def _traced(self, tracing: ServiceTracing, rec: ConsumerRecord[Any, Any]) -> None:
        with tracing.consuming(rec, self._name):
            result = self._handler(rec.key, rec.value)
            if inspect.isawaitable(result):
                await result

    async def _note_replay(self, partitions: list[TopicPartition]) -> None:
        """With tracing, remember the partitions' end offsets: what lies before them is a
        replay of history (a restart, a re-read), whose traces already have their spans."""
        if self._tracing is None or self._consumer is None:
            return
        self._replay_end = dict(await self._consumer.end_offsets(partitions))

    async def _follow_new_partitions(self) -> None:
        """Take on partitions the topic gained since we assigned ours.

        A topic can come back with more partitions than it was created with: deleted and
        re-created, grown by an operator, or auto-created with the broker's default after a
        broker lost its log. A follower that kept its first assignment would miss whatever
        lands in the others, and, if the topic was re-created, the first records of the old
        partitions too (a stale position that the new log has already reached is no error).
        Offsets cannot tell a grown topic from a re-created one, so every partition is read
        again from its beginning: followers' handlers are idempotent (revisions, sequence
        numbers, latest state per key), and this is rare. The metadata is the client's copy,
        refreshed every ``metadata_max_age_ms`` (10 s for followers) and on fetch errors.
        """
        consumer = self._consumer
        assert consumer is not None
        parts = consumer.partitions_for_topic(self._topic)
        if not parts:
            return
        wanted = {TopicPartition(self._topic, p) for p in parts}
        if wanted <= consumer.assignment():
            return
        consumer.assign(sorted(wanted))
        await consumer.seek_to_beginning(*wanted)
        await self._note_replay(list(wanted))
        log.warning(
            "%s: %s now has %d partitions; reading all of them again from the beginning",
            self._name,
            self._topic,
            len(wanted),
        )


async def fetch_snapshot(
    config_url: str,
    token: str,
    *,
    timeout_s: float = 10.0,
    retries: int | None = None,
    delay: float = 0.2,
) -> dict[str, Any]:
    """``GET {config_url}/api/v1/snapshot``, retrying for up to ``timeout_s`` seconds.

    config-api may still be starting, so connection errors, timeouts and non-200 answers are
    retried every ``delay`` seconds until the budget (or ``retries`` attempts) is spent; a
    401/403 fails at once (a wrong token does not get better).
    """
    url = config_url.rstrip("/") + "/api/v1/snapshot"
    headers = {"Authorization": f"Bearer {token}"}
    last: Exception | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    attempts = 0
    client = HttpClient(max_connections=2, connect_timeout=min(timeout_s, 5.0))
    try:
        while True:
            attempts += 1
            remaining = max(deadline - loop.time(), 0.1)
            try:
                status, _, body = await client.fetch("GET", url, headers, timeout=remaining)
                if status == 200:
                    data: dict[str, Any] = orjson.loads(body)
                    return data
                last = RuntimeError(f"snapshot: HTTP {status}")
                if status in (401, 403):
                    raise last
            except (HttpClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                last = exc
            if loop.time() + delay > deadline or (retries is not None and attempts >= retries):
                break
            await asyncio.sleep(delay)
    finally:
        await client.close()
    raise RuntimeError(
        f"could not fetch the config snapshot from {url} within {timeout_s:g}s"
        f" ({attempts} attempts; TURNOUT_SNAPSHOT_TIMEOUT_S): {last}"
    )


ConfigHandler = Callable[[ConfigEvent], Awaitable[None] | None]


class Revisions:
    """Per ``(entity, entity_id)``, the highest config revision applied (docs/CONTRACTS.md).

    A snapshot and the topic overlap, and delivery is at-least-once, so a consumer applies an
    event only if :meth:`accept` says it is newer than what it holds.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}

    def accept(self, event: ConfigEvent) -> bool:
        """True (and remembered) if ``event`` is newer than any applied for its entity."""
        ident = (event.entity, event.entity_id)
        if self._seen.get(ident, -1) >= event.revision:
            return False
        self._seen[ident] = event.revision
        return True


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
        snapshot_timeout_s: float = 10.0,
        tracing: ServiceTracing | None = None,
    ) -> None:
        self._config_url = config_url
        self._token = token
        self._handler = handler
        self._snapshot_timeout_s = snapshot_timeout_s
        self._follower = TopicFollower(
            settings, CONFIG.name, self._on_record, from_beginning=False, name=name, tracing=tracing
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
        """Record the end offsets, apply the snapshot, then follow; stops itself on failure."""
        try:
            await self._follower.start()  # end offsets recorded BEFORE the snapshot
            snap = await fetch_snapshot(
                self._config_url, self._token, timeout_s=self._snapshot_timeout_s
            )
            for item in snap.get("entities", []):
                await self._apply(ConfigEvent.model_validate(item))
        except BaseException:
            with contextlib.suppress(Exception):
                await self._follower.stop()
            raise
        self.snapshot_revision = int(snap.get("revision", 0))
        self._follower.start_background()

    async def stop(self) -> None:
        await self._follower.stop()
