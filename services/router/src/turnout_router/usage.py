"""Usage records off the hot path: buffer in memory, flush batches to Kafka, spool on failure.

The request path only appends its priced :class:`turnout_router.record.UsageRecord` (and its trace
context, when tracing) to a list (:meth:`UsageEmitter.emit`, ~0.2 µs). A background task wakes
every ``usage_flush_interval_ms``, stamps and serialises the buffered records as
:class:`turnout_common.events.UsageEvent` JSON and sends them with one aiokafka
``send_batch`` per partition (far cheaper than one ``send`` per record). If the broker does not
acknowledge in time, the batch is appended to an fsync'd JSONL file under
``<state_dir>/router-spool/`` (:mod:`turnout_router.spool`) and replayed (oldest file first)
once the broker is back. Delivery is at-least-once; metering de-duplicates by ``request_id``.

A broker that loses its log (a restart with memory storage such as Tansu's, a topic deleted and
re-created, an unclean leader election) acknowledges new records at offsets *below* ones it
acknowledged before. Tansu also acknowledges, and drops, records sent to a topic it no longer
has (and such "phantom" records later collide with the re-created topic's). So every
(re)connection first makes sure the topic exists; after a quiet spell (``idle_check_s``, when
a restart may have gone unnoticed) a send starts with a metadata round trip, which lets the
broker re-create a lost topic before anything is written to it; and acknowledged offsets are
checked: when a partition's offset goes backwards the batch counts as not delivered, the
records acknowledged in the last ``resend_window_s`` (which the lost log may have held before
any consumer read them) are spooled again, and everything is re-sent over a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from turnout_common.broker import ensure_topics
from turnout_common.settings import KafkaSettings
from turnout_common.topics import USAGE, Topic
from turnout_router.record import UsageRecord
from turnout_router.spool import Record, Spool

log = logging.getLogger(__name__)


def fast_uuid4(rng: random.Random) -> str:
    """A random (version 4) UUID string: ids need uniqueness, not secrecy."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _consume_outcome(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class BrokerLostLog(Exception):
    """The broker acknowledged records below offsets it had acknowledged before."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale
        """the send started before a loss was noticed (by another send): just send it again"""


class UsageEmitter:
    """Collects usage records and ships them to ``topic`` (see the module docstring)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        spool_dir: Path,
        *,
        flush_interval_s: float = 0.02,
        batch_max: int = 2000,
        send_timeout_s: float = 3.0,
        replay_interval_s: float = 1.0,
        resend_window_s: float = 10.0,
        resend_max_bytes: int = 8 << 20,
        idle_check_s: float = 0.25,
    ) -> None:
        self._kafka = kafka
        self.topic = topic
        self.spool = Spool(spool_dir)
        self._interval = flush_interval_s
        self._batch_max = batch_max
        self._send_timeout = send_timeout_s
        self._replay_interval = replay_interval_s
        self._resend_window = resend_window_s
        self._resend_max_bytes = resend_max_bytes
        self._recent_bytes = 0
        self._idle_check = idle_check_s
        self._last_ack = 0.0  # monotonic time of the last acknowledged send
        self._buf: list[tuple[UsageRecord, dict[str, str] | None]] = []
        self._rng = random.Random()
        self._partition = 0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._healthy = False
        self._tasks: list[asyncio.Task[None]] = []
        self._connecting: asyncio.Task[bool] | None = None
        self._ends: dict[int, int] = {}  # partition -> offset after our last acknowledged batch
        self._epoch = 0  # +1 whenever the broker lost its log
        self._recent: deque[tuple[float, list[Record]]] = deque()  # acknowledged, monotonic
        self.sent = 0
        self.spooled = 0
        self.resent = 0
        self.log_losses = 0

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    @property
    def pending(self) -> int:
        return len(self._buf)

    def emit(self, record: UsageRecord, trace: dict[str, str] | None = None) -> None:
        """Hot path: O(1), never blocks, never raises. ``trace``: the record's W3C trace
        context, sent as its Kafka headers."""
        buf = self._buf
        if not buf:
            self._wake.set()  # the flusher sleeps until there is something to send
        buf.append((record, trace))
        if len(buf) >= self._batch_max:
            self._full.set()

    async def start(self) -> None:
        for f in self.spool.dir.glob("*.part") if self.spool.dir.exists() else ():
            f.unlink(missing_ok=True)  # a crash mid-write: the batch was never acknowledged
        self._connecting = asyncio.create_task(self._connect(), name="usage-connect")
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="usage-flush"),
            asyncio.create_task(self._replay_loop(), name="usage-replay"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        if self._connecting is not None and not self._connecting.done():
            await self._connecting
        await self.flush()
        await self._disconnect()

    # --- internals --------------------------------------------------------------------
    async def _connect(self) -> bool:
        if self._producer is not None:
            return True
        k = self._kafka
        producer = AIOKafkaProducer(
            **k.client_options(),
            client_id=f"{k.client_id}-usage",
            acks="all",
            linger_ms=k.linger_ms,
            request_timeout_ms=k.request_timeout_ms,
            max_batch_size=1024 * 1024,
            enable_idempotence=False,
        )
        try:
            await asyncio.wait_for(producer.start(), self._send_timeout)
        except Exception as exc:
            log.warning("usage: broker unavailable (%s); spooling to %s", exc, self.spool.dir)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 1.0)
            return False
        await self._ensure_topic()
        self._producer = producer
        self._healthy = True
        return True

    async def _ensure_topic(self) -> None:
        """Create the topic if the broker does not have it (e.g. it restarted and lost it)."""
        topic = USAGE if self.topic == USAGE.name else Topic(self.topic, 4, False, "usage")
        try:
            await asyncio.wait_for(ensure_topics(self._kafka, [topic]), self._send_timeout)
        except Exception as exc:  # e.g. no permission to create topics: the offsets check stays
            log.warning("usage: could not make sure topic %s exists (%s)", self.topic, exc)

    async def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        self._healthy = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 1.0)

    def _encode(self, rec: UsageRecord, trace: dict[str, str] | None, now: datetime) -> Record:
        event = rec.event(fast_uuid4(self._rng), now)
        # an exact-size copy: orjson's own buffer keeps ~16 KiB of capacity per record, which
        # adds up in the batch, the spool queue and the resend window
        return rec.request_id.encode(), bytes(memoryview(orjson.dumps(event))), trace

    async def _send(self, records: list[Record]) -> None:
        producer = self._producer
        if producer is None:
            raise ConnectionError("no producer")
        if time.monotonic() - self._last_ack > self._idle_check:
            if not await asyncio.wait_for(producer.client.force_metadata_update(), 2.0):
                raise ConnectionError("metadata refresh failed")  # reconnect, ensure the topic
        parts = sorted(await asyncio.wait_for(producer.partitions_for(self.topic), 2.0))
        # one batch per flush, partitions in turn: keys are unique request ids, so per-key
        # placement does not matter (metering de-duplicates by request_id on any partition)
        self._partition = (self._partition + 1) % len(parts)
        p = parts[self._partition]
        epoch = self._epoch
        futures = []
        counts = []
        batch, n = producer.create_batch(), 0
        for key, value, trace in records:
            headers = [(k, v.encode()) for k, v in trace.items()] if trace else None
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await producer.send_batch(batch, self.topic, partition=p))
                counts.append(n)
                batch, n = producer.create_batch(), 0
                batch.append(key=key, value=value, timestamp=None, headers=headers)
            n += 1
        futures.append(await producer.send_batch(batch, self.topic, partition=p))
        counts.append(n)
        for fut in futures:  # if we give up waiting, a late failure must not be left unread
            fut.add_done_callback(_consume_outcome)
        acks = await asyncio.gather(*futures)
        if epoch != self._epoch:  # in flight while another send found the log lost
            raise BrokerLostLog("acknowledged around a broker log loss", stale=True)
        self._check_offsets(p, acks, counts)

    def _check_offsets(self, p: int, acks: Sequence[RecordMetadata], counts: list[int]) -> None:
        """Remember where partition ``p`` ends; raise if the broker's log went backwards."""
        end = self._ends.get(p)
        first, last = acks[0].offset, acks[-1].offset + counts[-1]
        if end is not None and first < end:
            self._ends = {}  # the whole log is gone, not just this partition's
            self._epoch += 1
            raise BrokerLostLog(
                f"{self.topic}[{p}] acknowledged offset {first} after {end}: the broker lost "
                "its log (restarted without storage, or the topic was re-created)"
            )
        self._ends[p] = max(end or 0, last)
        self._last_ack = time.monotonic()

    def _remember(self, records: list[Record]) -> None:
        """Keep acknowledged records for ``resend_window_s`` (at most ``resend_max_bytes``)
        in case the broker loses them."""
        if self._resend_window <= 0 or self._resend_max_bytes <= 0:
            return
        now = time.monotonic()
        recent = self._recent
        recent.append((now, records))
        self._recent_bytes += sum(len(r[1]) for r in records)
        while recent and (
            recent[0][0] < now - self._resend_window or self._recent_bytes > self._resend_max_bytes
        ):
            _, old = recent.popleft()
            self._recent_bytes -= sum(len(r[1]) for r in old)

    async def _respool_recent(self) -> None:
        """Spool the recently acknowledged records again (the lost log may have held them)."""
        recent, self._recent = self._recent, deque()
        self._recent_bytes = 0
        chunk: list[Record] = []
        total = 0
        for _, records in recent:
            chunk.extend(records)
            if len(chunk) >= self._batch_max:
                await asyncio.to_thread(self.spool.write, chunk)
                total += len(chunk)
                chunk = []
        if chunk:
            await asyncio.to_thread(self.spool.write, chunk)
            total += len(chunk)
        self.resent += total
        if total:
            log.warning("usage: re-sending %d recently acknowledged records", total)

    async def _deliver(self, records: list[Record]) -> bool:
        if self._connecting is not None and not self._connecting.done():
            await asyncio.shield(self._connecting)
        if not self._healthy:
            return False
        try:
            await asyncio.wait_for(self._send(records), self._send_timeout)
        except BrokerLostLog as exc:
            if not exc.stale:
                self.log_losses += 1
                log.warning("usage: %s; re-creating the topic and re-sending", exc)
                await self._disconnect()  # the next connection makes sure the topic exists
                await self._respool_recent()
            return False
        except Exception as exc:
            log.warning("usage: send failed (%s); spooling %d records", exc, len(records))
            await self._disconnect()
            return False
        self.sent += len(records)
        self._remember(records)
        return True

    async def flush(self) -> None:
        if not self._buf:
            return
        recs, self._buf = self._buf, []
        now = datetime.now(UTC)
        records = [self._encode(r, t, now) for r, t in recs]
        if not await self._deliver(records):
            await asyncio.to_thread(self.spool.write, records)
            self.spooled += len(records)

    async def _flush_loop(self) -> None:
        """Idle: no wake-ups. Busy: one batch per ``flush_interval`` (or when it is full)."""
        while True:
            await self._wake.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            self._wake.clear()
            self._full.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("usage: flush failed")

    async def replay(self) -> int:
        """Send spooled files, oldest first; returns how many records were delivered."""
        files = self.spool.files()
        if not files:
            return 0
        if self._producer is None and not await self._connect():
            return 0
        done = 0
        for path in files:
            records = await asyncio.to_thread(self.spool.read, path)
            if not await self._deliver(records):
                break
            path.unlink(missing_ok=True)
            done += len(records)
        if done:
            log.info("usage: replayed %d spooled records", done)
        return done

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(self._replay_interval)
            try:
                if self._producer is None:
                    await self._connect()
                await self.replay()
            except Exception:
                log.exception("usage: replay failed")
