"""The ``turnout.usage.v1`` consumer: poll a batch, commit it to the DB, then ack offsets.

Offsets are committed only after the DB transaction committed; a crash in between means the
batch is delivered again, which the idempotent write path absorbs. If the DB write fails the
consumer seeks back to the batch's first offsets and retries with backoff (nothing skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from turnout_common.consumer_loop import GroupConsumer
from turnout_common.events import UsageEvent
from turnout_metering import metrics
from turnout_metering.settings import MeteringSettings
from turnout_metering.usage.dead_letters import DeadLetter, Origin, describe, is_data_error
from turnout_metering.usage.repository import BatchResult
from turnout_metering.usage.service import Ingestor

if TYPE_CHECKING:
    from turnout_metering.tracing import MeteringTracing

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


_MAX_INT = 2**62
_MAX_COST = Decimal("1e12")
_KEYED = ("user_id", "key_id", "model", "provider_id", "provider", "outcome")


def problem(e: UsageEvent) -> str | None:
    """Why a parsed record cannot be metered (it would poison the batch), else None."""
    if not 0 < len(e.request_id) <= 200:
        return "request_id empty or longer than 200 characters"
    if not all(0 <= n < _MAX_INT for n in (e.input_tokens, e.output_tokens, e.cached_tokens)):
        return "token counts must be >= 0 and < 2**62"
    if not (e.cost_usd.is_finite() and 0 <= e.cost_usd < _MAX_COST):
        return "cost_usd must be a finite amount >= 0"
    if e.billed_usd is not None and not (
        e.billed_usd.is_finite() and 0 <= e.billed_usd < _MAX_COST
    ):
        return "billed_usd must be a finite amount >= 0"
    if not (0 <= e.status < 1000 and 0 <= e.fallbacks < 2**31):
        return "status or fallbacks out of range"
    if not (math.isfinite(e.latency_ms) and e.latency_ms >= 0):
        return "latency_ms must be finite and >= 0"
    # the daily rollup's key is made of these: too long, and PostgreSQL refuses the index row
    # (the whole batch would fail again on every redelivery)
    if len(e.source.encode()) > 64:
        return "source longer than 64 bytes"
    for name in _KEYED:
        value = getattr(e, name)
        if value is not None and len(value.encode()) > 200:
            return f"{name} longer than 200 bytes"
    return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


@dataclass(slots=True)
class Parsed:
    """A batch's valid events (with where each came from) and the records set aside."""

    events: list[UsageEvent] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)
    rejects: list[DeadLetter] = field(default_factory=list)

    def extend(self, other: Parsed) -> None:
        self.events += other.events
        self.origins += other.origins
        self.rejects += other.rejects


def parse(batch: Batch) -> Parsed:
    """Valid usage events of ``batch``; invalid records are counted, logged and set aside."""
    out = Parsed()
    for records in batch.values():
        for rec in records:
            if rec.value is None:
                continue
            origin = Origin(rec.topic, rec.partition, rec.offset, rec.key, rec.value)
            try:
                event = UsageEvent.model_validate_json(rec.value)
                reason = problem(event)
                if reason is None and b"\\u0000" in rec.value and _has_nul(event.model_dump()):
                    reason = "a NUL character in a text field (PostgreSQL refuses it)"
            except ValidationError as exc:
                reason = f"{exc.error_count()} schema errors: {exc.errors()[0]['msg']}"[:300]
            if reason is None:
                out.events.append(event)
                out.origins.append(origin)
                continue
            metrics.RECORDS.labels("invalid").inc()
            metrics.DEAD_LETTERS.labels("invalid").inc()
            out.rejects.append(DeadLetter(origin, reason))
            log.warning(
                "setting aside an invalid usage record at %s/%d@%d: %s",
                rec.topic, rec.partition, rec.offset, reason,
            )  # fmt: skip
    return out


async def parse_async(batch: Batch, chunk: int = 250) -> Parsed:
    """:func:`parse` in chunks, yielding to the loop so an in-flight DB write progresses."""
    out = Parsed()
    for tp, records in batch.items():
        for start in range(0, len(records), chunk):
            out.extend(parse({tp: records[start : start + chunk]}))
            await asyncio.sleep(0)
    return out


class UsageConsumer(GroupConsumer):
    """Meters turnout.usage.v1 in the metering group (see the module docstring)."""

    task_name = "metering-usage-consumer"

    def __init__(
        self,
        settings: MeteringSettings,
        ingestor: Ingestor,
        *,
        tracing: MeteringTracing | None = None,
    ) -> None:
        super().__init__(
            settings.kafka,
            settings.usage_topic,
            group=settings.metering_group,
            client_suffix="metering",
            offset_reset="earliest",
            max_poll_records=settings.metering_batch_max,
        )
        self._settings = settings
        self._ingestor = ingestor
        self._tracing = tracing
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self.progress_at = time.monotonic()
        """When offsets were last committed, or the consumer was last caught up."""
        self.running = False
        self.batches = 0

    async def poll(self) -> Batch:
        assert self._consumer is not None, "open() first"
        s = self._settings
        batch: Batch = await self._consumer.getmany(
            timeout_ms=s.metering_poll_timeout_ms, max_records=s.metering_batch_max
        )
        for tp, records in batch.items():
            if records:
                self._positions[tp] = records[-1].offset + 1
                # the first record fetched is where the group's committed offset was
                self._committed.setdefault(tp, records[0].offset)
        await self._reread_lost_logs(batch)
        return batch

    async def _reread_lost_logs(self, batch: Batch) -> None:
        """Seek to the beginning of any idle partition whose position is past its end.

        That means the broker lost its log (Tansu restarted with memory storage, or the topic
        was re-created): Kafka answers such a fetch with OFFSET_OUT_OF_RANGE and aiokafka then
        resets to ``earliest``, but Tansu answers with no records, so the consumer would wait
        there (and later skip whatever the new log holds below it). Re-read records are
        idempotent (request id)."""
        assert self._consumer is not None
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None or batch.get(tp):
                continue
            position = await self._consumer.position(tp)
            if position > high:
                log.warning(
                    "%s[%d]: position %d is past the end (%d): the broker lost its log; "
                    "reading the partition again from its beginning",
                    tp.topic, tp.partition, position, high,
                )  # fmt: skip
                await self._consumer.seek_to_beginning(tp)
                self._positions.pop(tp, None)

    async def handle(self, batch: Batch) -> BatchResult:
        """Write the batch to the DB (one transaction). Does not ack."""
        return await self._ingest(batch, parse(batch))

    async def _ingest(self, batch: Batch, parsed: Parsed) -> BatchResult:
        rejects = parsed.rejects
        if self._tracing is None:
            return await self._ingestor.ingest(parsed.events, rejects)
        return await self._tracing.ingest(
            batch, parsed.events, lambda events: self._ingestor.ingest(events, rejects)
        )

    async def _isolate(self, parsed: Parsed) -> None:
        """Write a batch the database refused in halves, down to single records: each one
        refused on its own is set aside (dead letter) and everything else is metered.
        Raises what is not the data's fault (database down...): the batch is retried."""
        await self._ingestor.ingest([], parsed.rejects)
        pending = [(parsed.events, parsed.origins)]
        while pending:
            events, origins = pending.pop()
            try:
                await self._ingestor.ingest(events)
                continue
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                if len(events) == 1:
                    reason = describe(exc)
                    log.error(
                        "setting aside usage record %s at %s/%d@%d: the database refuses it: %s",
                        events[0].request_id, origins[0].topic, origins[0].partition,
                        origins[0].offset, reason,
                    )  # fmt: skip
                    metrics.DEAD_LETTERS.labels("refused").inc()
                    await self._ingestor.ingest([], [DeadLetter(origins[0], reason)])
                    continue
            mid = len(events) // 2
            pending.append((events[mid:], origins[mid:]))
            pending.append((events[:mid], origins[:mid]))

    async def commit(self, batch: Batch) -> None:
        assert self._consumer is not None
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        if offsets:
            await self._consumer.commit(offsets)
            self._committed.update(offsets)
            self.progress_at = time.monotonic()

    def lag(self) -> int:
        """Records not *committed* yet over every assigned partition (a consumer that reads
        but cannot write shows its lag); sets ``turnout_consumer_lag``."""
        if self._consumer is None:
            return 0
        total = 0
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is not None:
                done = self._committed.get(tp, self._positions.get(tp, high))
                behind = max(0, high - done)
                metrics.observe_lag(tp.topic, tp.partition, behind)
                total += behind
        if total == 0:
            self.progress_at = time.monotonic()
        return total

    def stuck(self, after_s: float) -> bool:
        """Behind, and no offset committed for ``after_s`` seconds."""
        return self.lag() > 0 and time.monotonic() - self.progress_at > after_s

    async def _rewind(self, *batches: Batch) -> None:
        """Seek every partition back to the first uncommitted offset of ``batches``."""
        assert self._consumer is not None
        first: dict[TopicPartition, int] = {}
        for batch in batches:
            for tp, records in batch.items():
                if records:
                    first[tp] = min(first.get(tp, records[0].offset), records[0].offset)
        for tp, offset in first.items():
            self._consumer.seek(tp, offset)
            self._positions[tp] = offset
            self._committed[tp] = offset

    async def run(self) -> None:
        """Poll -> write -> ack, pipelined: the next batch is parsed while the DB writes the
        current one. Transactions never overlap; offsets are acked strictly after commit."""
        backoff = 0.2
        inflight: tuple[Batch, Parsed, asyncio.Task[BatchResult]] | None = None
        self.running = True
        try:
            while True:
                batch = await self.poll()
                parsed = await parse_async(batch) if batch else Parsed()
                if inflight is not None:
                    done, inflight = inflight, None
                    if not await self._finish(*done):
                        await self._rewind(done[0], batch)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                    backoff = 0.2
                if batch:
                    task = asyncio.create_task(self._ingest(batch, parsed))
                    inflight = (batch, parsed, task)
                else:
                    self.lag()
        finally:
            self.running = False
            if inflight is not None:
                inflight[2].cancel()
                with contextlib.suppress(BaseException):
                    await inflight[2]

    async def _finish(self, batch: Batch, parsed: Parsed, task: asyncio.Task[BatchResult]) -> bool:
        try:
            await task
        except Exception as exc:
            try:
                if not is_data_error(exc):
                    raise
                # the database refuses some record of the batch: find it, set it aside,
                # meter the rest (one record never holds the others)
                log.warning("usage batch refused (%s); isolating the record", describe(exc))
                await self._isolate(parsed)
            except Exception as exc2:  # DB down, deadlock, ...: the batch is read again
                log.warning("usage batch failed (%s); retrying", describe(exc2))
                return False
        try:
            await self.commit(batch)
        except KafkaError as exc:  # e.g. partitions revoked by a rebalance meanwhile
            log.warning("offset commit failed (%s); the batch will be redelivered", exc)
        self.batches += 1
        self.lag()
        return True
