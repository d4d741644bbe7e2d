"""Usage records off the hot path: buffer in memory, flush batches to Kafka, spool on failure.

The request path only appends a plain dict (:meth:`UsageEmitter.emit`, ~0.2 µs). A background
task wakes every ``usage_flush_interval_ms``, prices and serialises the buffered records as
:class:`turnout_common.events.UsageEvent` JSON and sends them with one aiokafka
``send_batch`` per partition (far cheaper than one ``send`` per record). If the broker does not
acknowledge in time, the batch is appended to an fsync'd JSONL file under
``<state_dir>/router-spool/`` and replayed (oldest file first) once the broker is back.
Delivery is at-least-once; metering de-duplicates by ``request_id``.

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
import itertools
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from turnout_common.broker import ensure_topics
from turnout_common.settings import KafkaSettings
from turnout_common.topics import USAGE, Topic
from turnout_router.billing import billed_nano, nano_of

log = logging.getLogger(__name__)

NANO = Decimal("0.000000001")
MTOK = Decimal(1_000_000)
Record = tuple[bytes, bytes, dict[str, str] | None]
"""(key, value, headers) of one serialised usage event; the headers are its W3C trace context
(``traceparent``…), present only when the router traces (:mod:`turnout_router.tracing`)."""


def fast_uuid4(rng: random.Random) -> str:
    """A random (version 4) UUID string: ids need uniqueness, not secrecy."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def price(inp: int, out: int, cached: int, prices: tuple[Decimal, Decimal, Decimal]) -> Decimal:
    """Cost in USD per docs/CONTRACTS.md: cached input tokens are priced at the cached price."""
    p_in, p_out, p_cached = prices
    cached = min(cached, inp)
    cost = (Decimal(inp - cached) * p_in + Decimal(cached) * p_cached + Decimal(out) * p_out) / MTOK
    return cost.quantize(NANO, rounding=ROUND_HALF_UP)


def price_nano(inp: int, out: int, cached: int, micro: tuple[int, int, int]) -> int:
    """The same cost in integer nano-USD from micro-USD-per-Mtok prices (exact, ~10x faster)."""
    cached = min(cached, inp)
    pico = (inp - cached) * micro[0] + cached * micro[2] + out * micro[1]  # 1e-12 USD
    nano, rest = divmod(pico, 1000)
    return nano + 1 if rest >= 500 else nano


def nano_str(nano: int) -> str:
    return f"{nano // 1_000_000_000}.{nano % 1_000_000_000:09d}"


def _consume_outcome(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class Spool:
    """Append-only, fsync'd JSONL files; one file per failed batch, replayed oldest first."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._seq = itertools.count()

    def files(self) -> list[Path]:
        if not self.dir.exists():
            return []
        return sorted(self.dir.glob("*.jsonl"))

    def write(self, records: list[Record]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.jsonl"
        tmp = path.with_suffix(".part")
        lines = b"".join(
            b'{"key":'
            + orjson.dumps(k.decode())
            + (b',"headers":' + orjson.dumps(h) if h else b"")
            + b',"value":'
            + v
            + b"}\n"
            for k, v, h in records
        )
        with open(tmp, "wb") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(path)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return path

    @staticmethod
    def read(path: Path) -> list[Record]:
        out: list[Record] = []
        for line in path.read_bytes().splitlines():
            if line.strip():
                item = orjson.loads(line)
                out.append((item["key"].encode(), orjson.dumps(item["value"]), item.get("headers")))
        return out


class BrokerLostLog(Exception):
    """The broker acknowledged records below offsets it had acknowledged before."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale
        """the send started before a loss was noticed (by another send): just send it again"""


class UsageEmitter:
    """Collects usage dicts and ships them to ``topic`` (see the module docstring)."""

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
        on_cost: Callable[[str | None, str | None, float, Any], None] | None = None,
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
        self._on_cost = on_cost
        self._buf: list[dict[str, Any]] = []
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

    def emit(self, record: dict[str, Any]) -> None:
        """Hot path: O(1), never blocks, never raises."""
        buf = self._buf
        if not buf:
            self._wake.set()  # the flusher sleeps until there is something to send
        buf.append(record)
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

    def _encode(self, rec: dict[str, Any], now: datetime) -> Record:
        prices = rec.pop("_prices", None)
        micro = rec.pop("_micro", None)
        fee = rec.pop("_byok_fee", 0)
        cost = 0.0
        if micro is not None:
            nano = price_nano(
                rec["input_tokens"], rec["output_tokens"], rec["cached_tokens"], micro
            )
            rec["cost_usd"] = nano_str(nano)
        elif prices is not None:
            dec = price(rec["input_tokens"], rec["output_tokens"], rec["cached_tokens"], prices)
            rec["cost_usd"] = format(dec, "f")
            nano = nano_of(rec["cost_usd"])
        else:
            rec["cost_usd"] = "0"
            nano = 0
        # the BYOK billing policy: what the request debits (budgets, prepaid credit)
        billed = billed_nano(nano, bool(rec.get("byok")), fee)
        rec["billed_usd"] = nano_str(billed)
        cost = billed / 1e9
        reservation = rec.pop("_reservation", None)
        trace = rec.pop("_trace", None)
        if (cost or reservation is not None) and self._on_cost is not None:
            self._on_cost(rec.get("user_id"), rec.get("key_id"), cost, reservation)
        started = rec.get("started_at")
        if isinstance(started, float):
            rec["started_at"] = datetime.fromtimestamp(started, UTC)
        rec["event_id"] = fast_uuid4(self._rng)
        rec["schema_version"] = 1
        rec["occurred_at"] = now
        # an exact-size copy: orjson's own buffer keeps ~16 KiB of capacity per record, which
        # adds up in the batch, the spool queue and the resend window
        return rec["request_id"].encode(), bytes(memoryview(orjson.dumps(rec))), trace

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
        records = [self._encode(r, now) for r in recs]
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
