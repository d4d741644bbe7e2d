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
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from turnout_common.db import advisory_lock_id, check_schema
from turnout_common.errors import RequestTooLarge
from turnout_common.metrics import OUTBOX_PENDING, OUTBOX_STUCK
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
-- only when missing: ALTER TABLE takes an ACCESS EXCLUSIVE lock even when the column exists,
-- and every service start runs this (it would wait behind a relay's open transaction)
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = '{schema}'
                   AND table_name = 'outbox' AND column_name = 'set_aside') THEN
        ALTER TABLE {schema}.outbox ADD COLUMN set_aside text;
    END IF;
END $$;
"""
MAX_EVENT_BYTES = 900_000
"""Largest event (key + payload + headers) enqueued: below Kafka's default 1 MB message limit,
so a committed change can always be published (a bigger one is refused before commit)."""
STUCK_AFTER_S = 60.0
"""A head row failing this long makes the service not ready (``turnout_outbox_stuck`` = 1)."""


def _check_size(topic: str, key: bytes | None, payload: bytes | None) -> None:
    size = len(key or b"") + len(payload or b"")
    if size > MAX_EVENT_BYTES:
        raise RequestTooLarge(
            f"this change would publish a {size:,}-byte event on {topic}, more than the "
            f"{MAX_EVENT_BYTES:,} bytes the broker takes; make the entity smaller "
            "(e.g. its metadata)"
        )


@dataclass(slots=True)
class HeadFailure:
    """The oldest pending row, failing to send since ``since`` (monotonic)."""

    row_id: int
    topic: str
    since: float
    error: str
    logged_at: float


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
    _check_size(topic, raw_key, payload)
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
    for k, p in records:
        _check_size(topic, k.encode() if isinstance(k, str) else k, p)
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
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        self._pool = pool
        self._stuck_after = stuck_after_s
        self._schema = check_schema(schema)
        self._send_many = send_many
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retain_hours = retain_sent_hours
        self._wake = asyncio.Event()
        self._lock_id = advisory_lock_id("outbox", schema)
        self.sent_total = 0
        self._pending_gauge = OUTBOX_PENDING.labels(service or schema)
        self._stuck_gauge = OUTBOX_STUCK.labels(service or schema)
        self._gauge_at = -1.0
        self.head_failure: HeadFailure | None = None
        """Set while the oldest pending row fails to send; it is then sent alone."""

    async def relay_once(self) -> int:
        """Send one batch; returns how many rows were sent (0 if none or another relay holds it)."""
        s = self._schema
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                return 0
            rows = await conn.fetch(
                f"SELECT id, topic, key, payload, headers FROM {s}.outbox"
                " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                1 if self.head_failure is not None else self._batch_size,
            )
            if not rows:
                self._cleared()
                return 0
            records = [
                OutboxRecord(r["id"], r["topic"], r["key"], r["payload"], dict(r["headers"]))
                for r in rows
            ]
            try:
                await self._send_many(records)
            except Exception as exc:
                self._failed(records[0], exc)
                raise
            self._cleared()
            await conn.execute(
                f"UPDATE {s}.outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                [r.id for r in records],
            )
        self.sent_total += len(records)
        return len(records)

    def _failed(self, head: OutboxRecord, exc: BaseException) -> None:
        now = time.monotonic()
        f = self.head_failure
        error = f"{type(exc).__name__}: {exc}"[:300]
        if f is None or f.row_id != head.id:
            # from now on the head is sent alone, so a row that can never be sent is found
            self.head_failure = HeadFailure(head.id, head.topic, now, error, now)
            return
        f.error = error
        if now - f.since >= self._stuck_after:
            self._stuck_gauge.set(1)
            if now - f.logged_at >= STUCK_AFTER_S or f.logged_at == f.since:
                f.logged_at = now
                log.error(
                    "outbox (%s): row %d for %s has failed to send for %.0fs (%s); nothing "
                    "behind it is published. If it can never be sent, set it aside: "
                    "POST /api/v1/outbox/set-aside on this service (admin)",
                    self._schema, f.row_id, f.topic, now - f.since, error,
                )  # fmt: skip

    def _cleared(self) -> None:
        if self.head_failure is not None:
            self.head_failure = None
            self._stuck_gauge.set(0)

    def stuck(self) -> bool:
        """The oldest pending row has failed to send for ``stuck_after_s`` seconds."""
        f = self.head_failure
        return f is not None and time.monotonic() - f.since >= self._stuck_after

    async def head(self) -> dict[str, Any] | None:
        """The oldest pending row (without its payload), or None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT id, topic, length(payload) AS payload_bytes, created_at"
                f" FROM {self._schema}.outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1"
            )
        return None if row is None else dict(row)

    async def set_aside(self, row_id: int, reason: str) -> bool:
        """Mark pending row ``row_id`` as not to be sent (kept, with ``reason``); the rows
        behind it go out. False if it is not pending."""
        async with self._pool.acquire() as conn:
            status: str = await conn.execute(
                f"UPDATE {self._schema}.outbox SET sent_at = now(), set_aside = $2"
                " WHERE id = $1 AND sent_at IS NULL",
                row_id,
                reason,
            )
        done = status.endswith(" 1")
        if done:
            log.warning("outbox (%s): row %d set aside: %s", self._schema, row_id, reason)
            if self.head_failure is not None and self.head_failure.row_id == row_id:
                self._cleared()
            self._wake.set()
        return done

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
                f"DELETE FROM {self._schema}.outbox WHERE set_aside IS NULL"
                " AND sent_at < now() - make_interval("
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
