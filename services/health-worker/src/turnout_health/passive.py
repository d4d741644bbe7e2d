"""Passive signals: attempts from ``turnout.usage.v1`` counted per provider and deployment.

Every replica joins the ``turnout-health`` consumer group, so each sees a share of the
usage records; counters are flushed to ``passive_buckets`` (per 100 ms) and the elected
worker judges the sum of every replica's share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from turnout_common.consumer_loop import GroupConsumer
from turnout_common.events import Attempt, UsageEvent
from turnout_common.settings import KafkaSettings
from turnout_common.topics import USAGE
from turnout_health.repository import PassiveCount

log = logging.getLogger(__name__)

Flush = Callable[[list[PassiveCount]], Awaitable[None]]


def attempt_failed(attempt: Attempt) -> bool:
    """Connect errors, timeouts and 5xx count against a provider; 4xx and 429 do not.

    The router maps every upstream failure (connect error, timeout included) to a status; an
    attempt without one is the router's own problem (no adapter, an undecryptable provider
    key), which says nothing about the provider's health.
    """
    if attempt.status is None:
        return False
    return attempt.status >= 500


def attempts_of(event: UsageEvent) -> list[Attempt]:
    if event.attempts:
        return list(event.attempts)
    if event.provider_id is None or event.outcome in ("rejected", "client_abort"):
        return []
    return [
        Attempt(
            provider_id=event.provider_id,
            provider=event.provider or event.provider_id,
            model=event.model or "",
            upstream_model=event.upstream_model or "",
            deployment_id=event.deployment_id or "",
            status=event.status,
            error=event.error_code,
            latency_ms=event.latency_ms,
        )
    ]


class PassiveCollector:
    """In-memory counters between two flushes."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[float]] = {}
        self.events = 0

    def add(self, event: UsageEvent) -> None:
        self.events += 1
        attempts = attempts_of(event)
        for i, attempt in enumerate(attempts):
            last = i == len(attempts) - 1
            if last and event.outcome == "client_abort" and attempt.status is None:
                continue  # the client left; says nothing about the upstream
            c = self._counts.setdefault((attempt.provider_id, attempt.deployment_id), [0, 0, 0, 0])
            latency = attempt.latency_ms or 0.0
            c[0] += 1
            c[1] += 1 if attempt_failed(attempt) else 0
            c[2] += latency
            c[3] = max(c[3], latency)

    def drain(self) -> list[PassiveCount]:
        counts, self._counts = self._counts, {}
        return [
            PassiveCount(p, d, int(c[0]), int(c[1]), float(c[2]), float(c[3]))
            for (p, d), c in counts.items()
        ]


class UsageConsumer(GroupConsumer):
    """Consumes usage in a consumer group; commits offsets after each flush to the database."""

    task_name = "health:usage"

    def __init__(self, kafka: KafkaSettings, group: str, flush: Flush, flush_s: float) -> None:
        super().__init__(
            kafka, USAGE.name, group=group, client_suffix="health-usage", offset_reset="latest"
        )
        self._flush = flush
        self._flush_s = flush_s
        self.collector = PassiveCollector()

    async def run(self) -> None:
        consumer = self.consumer
        loop = asyncio.get_running_loop()
        last_flush = loop.time()
        while True:
            batches = await consumer.getmany(timeout_ms=int(self._flush_s * 500) or 1)
            for records in batches.values():
                for rec in records:
                    if rec.value is None:
                        continue
                    try:
                        self.collector.add(UsageEvent.model_validate_json(rec.value))
                    except ValidationError:
                        log.warning("skipping a malformed usage record at offset %s", rec.offset)
            if loop.time() - last_flush >= self._flush_s:
                last_flush = loop.time()
                await self._flush_and_commit()

    async def _flush_and_commit(self) -> None:
        counts = self.collector.drain()
        try:
            if counts:
                await self._flush(counts)
            await self.consumer.commit()
        except Exception as exc:
            log.warning("usage flush failed (%s); records will be re-read", type(exc).__name__)
