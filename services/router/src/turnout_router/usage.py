"""Usage records off the hot path: buffer in memory, flush batches to Kafka, spool on failure.

The request path only appends a plain dict (:meth:`UsageEmitter.emit`, ~0.2 µs). A background
task wakes every ``usage_flush_interval_ms``, prices and serialises the buffered records as
:class:`turnout_common.events.UsageEvent` JSON and sends them with one aiokafka
``send_batch`` per partition (far cheaper than one ``send`` per record). If the broker does not
acknowledge in time, the batch is appended to an fsync'd JSONL file under
``<state_dir>/router-spool/`` and replayed (oldest file first) once the broker is back.
Delivery is at-least-once; metering de-duplicates by ``request_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from turnout_common.settings import KafkaSettings

log = logging.getLogger(__name__)

NANO = Decimal("0.000000001")
MTOK = Decimal(1_000_000)
Record = tuple[bytes, bytes]
"""(key, value) of one serialised usage event."""


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
            b'{"key":' + orjson.dumps(k.decode()) + b',"value":' + v + b"}\n" for k, v in records
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
                out.append((item["key"].encode(), orjson.dumps(item["value"])))
        return out


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
        on_cost: Callable[[str | None, str | None, float], None] | None = None,
    ) -> None:
        self._kafka = kafka
        self.topic = topic
        self.spool = Spool(spool_dir)
        self._interval = flush_interval_s
        self._batch_max = batch_max
        self._send_timeout = send_timeout_s
        self._replay_interval = replay_interval_s
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
        self.sent = 0
        self.spooled = 0

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
            bootstrap_servers=k.bootstrap,
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
        self._producer = producer
        self._healthy = True
        return True

    async def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        self._healthy = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 1.0)

    def _encode(self, rec: dict[str, Any], now: datetime) -> Record:
        prices = rec.pop("_prices", None)
        micro = rec.pop("_micro", None)
        cost = 0.0
        if micro is not None:
            nano = price_nano(
                rec["input_tokens"], rec["output_tokens"], rec["cached_tokens"], micro
            )
            rec["cost_usd"] = nano_str(nano)
            cost = nano / 1e9
        elif prices is not None:
            dec = price(rec["input_tokens"], rec["output_tokens"], rec["cached_tokens"], prices)
            rec["cost_usd"] = format(dec, "f")
            cost = float(dec)
        else:
            rec["cost_usd"] = "0"
        if cost and self._on_cost is not None:
            self._on_cost(rec.get("user_id"), rec.get("key_id"), cost)
        started = rec.get("started_at")
        if isinstance(started, float):
            rec["started_at"] = datetime.fromtimestamp(started, UTC)
        rec["event_id"] = fast_uuid4(self._rng)
        rec["schema_version"] = 1
        rec["occurred_at"] = now
        return rec["request_id"].encode(), orjson.dumps(rec)

    async def _send(self, records: list[Record]) -> None:
        producer = self._producer
        if producer is None:
            raise ConnectionError("no producer")
        parts = sorted(await asyncio.wait_for(producer.partitions_for(self.topic), 2.0))
        # one batch per flush, partitions in turn: keys are unique request ids, so per-key
        # placement does not matter (metering de-duplicates by request_id on any partition)
        self._partition = (self._partition + 1) % len(parts)
        p = parts[self._partition]
        futures = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, self.topic, partition=p))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        futures.append(await producer.send_batch(batch, self.topic, partition=p))
        for fut in futures:  # if we give up waiting, a late failure must not be left unread
            fut.add_done_callback(_consume_outcome)
        await asyncio.gather(*futures)

    async def _deliver(self, records: list[Record]) -> bool:
        if self._connecting is not None and not self._connecting.done():
            await asyncio.shield(self._connecting)
        if not self._healthy:
            return False
        try:
            await asyncio.wait_for(self._send(records), self._send_timeout)
        except Exception as exc:
            log.warning("usage: send failed (%s); spooling %d records", exc, len(records))
            await self._disconnect()
            return False
        self.sent += len(records)
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
