"""The transactional outbox.

A service writes its change and the event row(s) in ONE database transaction
(:func:`enqueue`, or :func:`enqueue_many` for many rows in one statement); a relay
(:class:`OutboxRelay`) sends pending rows to Kafka in id order and marks them sent only after
the broker acknowledged them. Delivery is at-least-once (a crash between the ack and the mark
re-sends), so consumers are idempotent (event id / revision).
Several relays may run: a per-schema advisory lock lets one send at a time, preserving order.

A row's ``headers`` become its Kafka message headers. Written inside a traced span (a service
that traces, :mod:`turnout_common.tracing`), rows also get the W3C trace context
(``traceparent``, ``tracestate``) of a ``create <topic>`` span there, so consumers continue
the trace of the request or probe that caused them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from turnout_common.db import check_schema
from turnout_common.metrics import OUTBOX_PENDING
from turnout_common.telemetry import message_trace_headers

log = logging.getLogger(__name__)

OUTBOX_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         bytea,
    payload     bytea,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON {schema}.outbox (id) WHERE sent_at IS NULL;
"""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    topic: str
    key: bytes | None
    payload: bytes | None
    headers: dict[str, str]


SendMany = Callable[[Sequence[OutboxRecord]], Awaitable[Any]]
"""Sends records and returns only after the broker acknowledged every one (raises otherwise)."""


def _channel(schema: str) -> str:
    return f"{schema}_outbox"


async def enqueue(
    conn: asyncpg.Connection,
    schema: str,
    topic: str,
    key: str | bytes | None,
    payload: bytes | None,
    headers: dict[str, str] | None = None,
) -> int:
    """Add an event to the outbox inside the caller's transaction. Returns the row id."""
    check_schema(schema)
    raw_key = key.encode() if isinstance(key, str) else key
    trace = message_trace_headers(topic, 1, key)
    if trace is not None:
        headers = {**headers, **trace} if headers else trace
    row_id: int = await conn.fetchval(
        f"INSERT INTO {schema}.outbox (topic, key, payload, headers) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        topic,
        raw_key,
        payload,
        headers or {},
    )
    await conn.execute("SELECT pg_notify($1, '')", _channel(schema))
    return row_id


async def enqueue_many(
    conn: asyncpg.Connection,
    schema: str,
    topic: str,
    records: Sequence[tuple[str | bytes | None, bytes | None]],
    headers: dict[str, str] | None = None,
) -> int:
    """Add ``(key, payload)`` events, in order, inside the caller's transaction.

    One INSERT for all of them (:func:`enqueue` costs a round trip per row); ``headers`` (and
    the trace context, one ``create`` span for all) go on every row. Returns how many rows
    were added.
    """
    if not records:
        return 0
    check_schema(schema)
    trace = message_trace_headers(topic, len(records), records[0][0] if len(records) == 1 else None)
    if trace is not None:
        headers = {**headers, **trace} if headers else trace
    await conn.execute(
        f"INSERT INTO {schema}.outbox (topic, key, payload, headers)"
        " SELECT $1, k, p, $4::jsonb"
        " FROM unnest($2::bytea[], $3::bytea[]) WITH ORDINALITY AS t(k, p, i) ORDER BY i",
        topic,
        [k.encode() if isinstance(k, str) else k for k, _ in records],
        [p for _, p in records],
        headers or {},
    )
    await conn.execute("SELECT pg_notify($1, '')", _channel(schema))
    return len(records)


class OutboxRelay:
    """Relays pending outbox rows of one schema to Kafka."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        send_many: SendMany,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retain_sent_hours: float = 24.0,
        service: str | None = None,
    ) -> None:
        self._pool = pool
        self._schema = check_schema(schema)
        self._send_many = send_many
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retain_hours = retain_sent_hours
        self._wake = asyncio.Event()
        digest = hashlib.sha256(f"turnout-outbox:{schema}".encode()).digest()
        self._lock_id = int.from_bytes(digest[:8], "big", signed=True)
        self.sent_total = 0
        self._pending_gauge = OUTBOX_PENDING.labels(service or schema)
        self._gauge_at = -1.0

    async def relay_once(self) -> int:
        """Send one batch; returns how many rows were sent (0 if none or another relay holds it)."""
        s = self._schema
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                return 0
            rows = await conn.fetch(
                f"SELECT id, topic, key, payload, headers FROM {s}.outbox"
                " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                self._batch_size,
            )
            if not rows:
                return 0
            records = [
                OutboxRecord(r["id"], r["topic"], r["key"], r["payload"], dict(r["headers"]))
                for r in rows
            ]
            await self._send_many(records)
            await conn.execute(
                f"UPDATE {s}.outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                [r.id for r in records],
            )
        self.sent_total += len(records)
        return len(records)

    async def drain(self) -> int:
        """Relay until nothing is pending."""
        total = 0
        while sent := await self.relay_once():
            total += sent
        return total

    async def pending(self) -> int:
        async with self._pool.acquire() as conn:
            n: int = await conn.fetchval(
                f"SELECT count(*) FROM {self._schema}.outbox WHERE sent_at IS NULL"
            )
            return n

    async def _update_gauge(self, now: float) -> None:
        """``turnout_outbox_pending``, at most once a second (one indexed count)."""
        if now - self._gauge_at >= 1.0:
            self._gauge_at = now
            with contextlib.suppress(Exception):
                self._pending_gauge.set(await asyncio.wait_for(self.pending(), 2.0))

    async def purge_sent(self) -> int:
        async with self._pool.acquire() as conn:
            status: str = await conn.execute(
                f"DELETE FROM {self._schema}.outbox WHERE sent_at < now() - make_interval("
                "secs => $1)",
                self._retain_hours * 3600,
            )
        return int(status.split()[-1])

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Relay forever: woken by NOTIFY, polling as a fallback, backing off on errors."""
        listener: asyncpg.Connection | None = None
        backoff = 0.2
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._pool.acquire()
                        await listener.add_listener(_channel(self._schema), self._notified)
                    self._wake.clear()
                    await self.drain()
                    await self._update_gauge(loop.time())
                    backoff = 0.2
                    if loop.time() - last_purge > 600:
                        last_purge = loop.time()
                        await self.purge_sent()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "outbox relay (%s): %s; retrying in %.1fs",
                        self._schema,
                        exc.__class__.__name__,
                        backoff,
                    )
                    await self._update_gauge(loop.time())
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(_channel(self._schema), self._notified)
                await self._pool.release(listener)
