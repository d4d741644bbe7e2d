"""One batch of usage events -> one transaction: log, rollups, spend, ledger, outbox events."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from turnout_common.events import UsageEvent
from turnout_common.outbox import enqueue_many
from turnout_metering import metrics
from turnout_metering.credits.service import CreditService
from turnout_metering.usage import dead_letters
from turnout_metering.usage.billing import billing_payload
from turnout_metering.usage.dead_letters import DeadLetter
from turnout_metering.usage.partitions import Partitions
from turnout_metering.usage.repository import BatchResult, write_batch


class RateMeter:
    """Records per second over a sliding window."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window = window_s
        self._marks: deque[tuple[float, int]] = deque()

    def add(self, count: int) -> float:
        now = time.monotonic()
        self._marks.append((now, count))
        while self._marks and now - self._marks[0][0] > self._window:
            self._marks.popleft()
        span = max(now - self._marks[0][0], 1.0) if len(self._marks) > 1 else self._window
        return sum(c for _, c in self._marks) / span


@dataclass(eq=False)
class Ingestor:
    """Writes batches of usage events, each in one transaction (:meth:`ingest`)."""

    pool: asyncpg.Pool
    schema: str
    credits: CreditService
    billing_topic: str
    partitions: Partitions
    rate: RateMeter = field(default_factory=RateMeter, init=False)

    async def ingest(
        self, events: Sequence[UsageEvent], rejects: Sequence[DeadLetter] = ()
    ) -> BatchResult:
        """Commit the batch and the records set aside from it (all or nothing); the caller
        acks the records only after this."""
        started = time.perf_counter()
        period = self.credits.period()
        now = self.credits.now()
        if self.partitions.missing((e.started_at for e in events), now):
            async with self.pool.acquire() as conn:  # committed on its own, before the batch
                await self.partitions.ensure_for(conn, [e.started_at for e in events], now)
        async with self.pool.acquire() as conn, conn.transaction():
            await dead_letters.insert(conn, rejects)
            if not events:
                return BatchResult(0, [], set())
            result = await write_batch(conn, events, period=period)
            if result.inserted:
                await enqueue_many(
                    conn,
                    self.schema,
                    self.billing_topic,
                    [(e.request_id.encode(), billing_payload(e)) for e in result.inserted],
                )
                await self.credits.refresh(conn, result.touched, period)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self._count(result)
        return result

    def _count(self, result: BatchResult) -> None:
        new = len(result.inserted)
        metrics.RECORDS.labels("inserted").inc(new)
        metrics.RECORDS.labels("duplicate").inc(result.received - new)
        metrics.BILLING_EVENTS.inc(new)
        metrics.observe_cost(result.inserted)
        metrics.TOKENS.labels("input").inc(sum(e.input_tokens for e in result.inserted))
        metrics.TOKENS.labels("output").inc(sum(e.output_tokens for e in result.inserted))
        metrics.INGEST_RATE.set(self.rate.add(result.received))
