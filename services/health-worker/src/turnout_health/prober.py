"""The elected worker's duties: probe due providers, judge passive counters, trim history."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import asyncpg
import httpx

from turnout_common.crypto import DecryptionError, KeyRing
from turnout_common.tasks import cancel
from turnout_health import metrics, overrides, repository
from turnout_health.probes import (
    SELF_HOSTED,
    ProbeResult,
    probe_requests,
    run_probe,
    unknown,
    vllm_queue,
)
from turnout_health.registry import ConfigRegistry, ProviderConfig
from turnout_health.service import HealthService
from turnout_health.settings import HealthSettings

if TYPE_CHECKING:
    from turnout_health.tracing import HealthTracing

log = logging.getLogger(__name__)


class Prober:
    def __init__(
        self,
        pool: asyncpg.Pool,
        service: HealthService,
        registry: ConfigRegistry,
        settings: HealthSettings,
        keyring: KeyRing | None,
        client: httpx.AsyncClient,
        tracing: HealthTracing | None = None,
    ) -> None:
        """With ``tracing``, each probe (and the health event it causes) is traced."""
        self._pool = pool
        self._tracing = tracing
        self._service = service
        self._registry = registry
        self._settings = settings
        self._keyring = keyring
        self._client = client
        self._sem = asyncio.Semaphore(settings.probe_concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._next_due: dict[str, float] = {}
        self._next_passive = 0.0
        self._next_retention = 0.0
        self._next_expiry = 0.0
        self.probes = 0

    def _interval(self) -> float:
        s = self._settings
        return s.probe_interval_s * (1 + random.uniform(-s.probe_jitter, s.probe_jitter))

    async def tick(self) -> None:
        now = time.monotonic()
        known = {provider_id for provider_id, _ in self._service.runtimes}
        for provider_id in known - self._registry.providers.keys():
            await self._service.forget(provider_id)
        for cfg in list(self._registry.providers.values()):
            if not cfg.enabled or cfg.id in self._tasks:
                continue
            circuit = self._service.runtime(cfg.id).circuit
            if circuit.state == "open":
                if circuit.trial_due(now):
                    self._spawn(cfg, trial=True)
            elif now >= self._next_due.setdefault(cfg.id, now + self._first_delay()):
                self._spawn(cfg, trial=False)
        if now >= self._next_expiry:
            self._next_expiry = now + 1.0
            for provider_id in await overrides.expire(self._pool, self._service.schema):
                log.info("the admin override of provider %s expired", provider_id)
        if now >= self._next_passive:
            self._next_passive = now + self._settings.probe_interval_s
            await self._judge_passive(now)
        if now >= self._next_retention:
            self._next_retention = now + self._settings.retention_every_s
            await self._retention()

    def _first_delay(self) -> float:
        return random.uniform(0, self._settings.probe_interval_s * self._settings.probe_jitter)

    def _spawn(self, cfg: ProviderConfig, *, trial: bool) -> None:
        task = asyncio.create_task(self._probe(cfg, trial), name=f"probe:{cfg.id}")
        self._tasks[cfg.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(cfg.id, None))

    async def _probe(self, cfg: ProviderConfig, trial: bool) -> None:
        try:
            async with self._sem:
                if self._tracing is None:
                    await self._probe_and_apply(cfg, trial)
                else:
                    await self._tracing.probe(cfg, trial, self._probe_and_apply)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("probe of provider %s not recorded: %s", cfg.id, type(exc).__name__)
        finally:
            self._next_due[cfg.id] = time.monotonic() + self._interval()

    async def _probe_and_apply(self, cfg: ProviderConfig, trial: bool) -> ProbeResult:
        if trial:
            await self._service.enter_half_open(cfg)
        result = await self.probe(cfg)
        self.probes += 1
        if result.latency_ms is not None:
            metrics.PROBE_LATENCY.labels(cfg.kind, result.status).observe(result.latency_ms / 1000)
        await self._service.apply_probe(cfg, result)
        return result

    async def probe(self, cfg: ProviderConfig) -> ProbeResult:
        """Probe one provider now (decrypting its key just for this call)."""
        api_key: str | None = None
        if cfg.api_key_encrypted:
            if self._keyring is None:
                return unknown("provider has an API key but TURNOUT_ENCRYPTION_KEYS is not set")
            try:
                api_key = self._keyring.decrypt(cfg.api_key_encrypted)
            except DecryptionError:
                return unknown("the API key does not decrypt with TURNOUT_ENCRYPTION_KEYS")
        elif cfg.kind not in SELF_HOSTED:
            return ProbeResult("auth_failed", "neutral", None, None, "no API key configured")
        try:
            requests = probe_requests(cfg.kind, cfg.base_url, api_key)
        except ValueError as exc:
            return unknown(str(exc))
        if self._tracing is not None:  # the upstream may continue the probe's trace
            trace = self._tracing.outgoing_headers()
            for req in requests:
                req.headers.update(trace)
        result = await run_probe(
            self._client,
            requests,
            timeout_s=self._settings.probe_timeout_s,
            slow_ms=self._settings.slow_ms,
        )
        if cfg.kind == "vllm" and cfg.base_url and result.status in ("healthy", "degraded"):
            # its queue, for the router's least_busy strategy (published with the state)
            waiting, running = await vllm_queue(
                self._client, cfg.base_url, requests[0].headers, self._settings.probe_timeout_s
            )
            result = replace(result, queue_waiting=waiting, queue_running=running)
        return result

    async def _judge_passive(self, now: float) -> None:
        """Passive signals per provider and per deployment; deployments' cool-downs."""
        window = self._settings.passive_window_s
        async with self._pool.acquire() as conn:
            counts = await repository.passive_window(conn, window, per_deployment=False)
            counts += await repository.passive_window(conn, window, per_deployment=True)
        for count in counts:
            cfg = self._registry.providers.get(count.provider_id)
            if cfg is not None and cfg.enabled:
                await self._service.apply_passive(cfg, count)
        # slow targets without traffic in the window any more: judge them on an empty window
        seen = {(c.provider_id, c.deployment_id) for c in counts}
        for (provider_id, deployment_id), rt in list(self._service.runtimes.items()):
            cfg = self._registry.providers.get(provider_id)
            if rt.slow is not None and (provider_id, deployment_id) not in seen and cfg:
                empty = repository.PassiveCount(provider_id, deployment_id, 0, 0, 0.0, 0.0)
                await self._service.apply_passive(cfg, empty)
        for (provider_id, deployment_id), rt in list(self._service.runtimes.items()):
            cfg = self._registry.providers.get(provider_id)
            if deployment_id and cfg is not None and rt.circuit.trial_due(now):
                await self._service.enter_half_open(cfg, deployment_id)

    async def _retention(self) -> None:
        s = self._settings
        async with self._pool.acquire() as conn:
            await repository.purge_history(conn, s.history_max_age_s, s.history_keep_per_provider)
            await repository.purge_passive(conn, max(3 * s.passive_window_s, 3600.0))

    async def stop(self) -> None:
        await cancel(*self._tasks.values())
        self._tasks.clear()
        self._next_due.clear()
