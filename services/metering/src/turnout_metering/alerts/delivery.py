"""Sends the pending alert deliveries: POST, retries with exponential backoff, dead letter.

A delivery is tried at most ``attempts`` times; after a failure (no answer within the timeout,
or a status other than 2xx) the next try waits ``backoff_s * 2**(n-1)`` (capped at 5 minutes).
After the last one the row's state becomes ``dead``: the dead-letter record an admin lists on
``GET /api/v1/alerts/deliveries?state=dead`` (and ``turnout_metering_alert_deliveries_total
{result="dead"}`` counts). Redirects are not followed. This runs in its own task: nothing on a
request path waits for a webhook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp
import asyncpg

from turnout_common.events import AlertEvent
from turnout_metering.alerts import repository
from turnout_metering.alerts.webhooks import Target, body, headers

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 300.0


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        global_targets: list[Target],
        now: Callable[[], datetime],
        *,
        attempts: int,
        backoff_s: float,
        timeout_s: float,
        on_result: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._pool = pool
        self._global = {t.id: t for t in global_targets}
        self._now = now
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._on_result = on_result
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._task = asyncio.create_task(self._run(), name="metering:alert-delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("alert delivery round failed (%s); retrying", exc)
                sent = 0
            if sent:
                continue
            wait = await self._idle_for()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def _idle_for(self) -> float:
        async with self._pool.acquire() as conn:
            due = await repository.next_due(conn)
        if due is None:
            return 5.0
        return min(5.0, max(0.01, (due - self._now()).total_seconds()))

    async def run_once(self) -> int:
        """Send every due delivery (concurrently); answers how many were tried."""
        now = self._now()
        async with self._pool.acquire() as conn:
            stored = {t.id: t for t in await repository.stored_targets(conn)}
            due = await repository.claim_due(conn, now, timedelta(seconds=60), 50)
        await asyncio.gather(*(self._send(r, {**self._global, **stored}) for r in due))
        return len(due)

    async def _send(self, row: asyncpg.Record, targets: dict[str, Target]) -> None:
        target = targets.get(row["webhook"])
        attempt = row["attempts"] + 1
        status: int | None = None
        error: str | None = None
        if target is None:
            error = "webhook no longer configured"
        else:
            alert = AlertEvent.model_validate_json(row["payload"])
            payload = body(alert, target.format)
            try:
                assert self._session is not None
                async with self._session.post(
                    target.url, data=payload, headers=headers(alert, target, payload),
                    allow_redirects=False,
                ) as answer:  # fmt: skip
                    status = answer.status
                    await answer.read()
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        await self._record(row, attempt, status, error, gone=target is None)

    async def _record(
        self, row: asyncpg.Record, attempt: int, status: int | None, error: str | None,
        *, gone: bool,
    ) -> None:  # fmt: skip
        now = self._now()
        if error is None:
            state, next_at, result = "delivered", now, "delivered"
        elif gone or attempt >= self._attempts:
            state, next_at, result = "dead", now, "dead"
            log.error("alert delivery %d to %s is dead after %d attempts: %s",
                      row["id"], row["webhook"], attempt, error)  # fmt: skip
        else:
            delay = min(MAX_BACKOFF_S, self._backoff_s * 2 ** (attempt - 1))
            state, next_at, result = "pending", now + timedelta(seconds=delay), "retry"
        async with self._pool.acquire() as conn:
            await repository.finish(
                conn, row["id"], state=state, attempts=attempt, next_at=next_at,
                status=status, error=error,
            )  # fmt: skip
        self._on_result(result)
