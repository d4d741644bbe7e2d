"""The background loop: keep/take the leader lease; while leading, drive the prober."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from turnout_common.tasks import cancel
from turnout_health import metrics
from turnout_health.leader import LeaderLease
from turnout_health.prober import Prober
from turnout_health.service import HealthService
from turnout_health.settings import HealthSettings

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self, lease: LeaderLease, service: HealthService, prober: Prober, settings: HealthSettings
    ) -> None:
        self.lease = lease
        self._service = service
        self.prober = prober
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self._resumed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="health:worker")

    async def _run(self) -> None:
        next_lease_check = 0.0
        while True:
            try:
                next_lease_check = await self._step(next_lease_check)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("health tick failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(self._settings.tick_s)

    async def _step(self, next_lease_check: float) -> float:
        now = time.monotonic()
        if now >= next_lease_check:
            leading = await self.lease.check()
            retry = self._settings.leader_retry_s
            next_lease_check = now + (min(retry, 1.0) if leading else retry)
            if not leading and self._resumed:
                self._resumed = False
                await self.prober.stop()
            metrics.LEADER.set(1 if leading else 0)
        if self.lease.is_leader:
            if not self._resumed:
                await self._service.load()  # continue where the previous leader stopped
                self._resumed = True
            await self.prober.tick()
        return next_lease_check

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.prober.stop()
        await self.lease.release()
