"""State per provider (and per deployment): results -> circuit -> stored state -> events.

A target is ``(provider_id, deployment_id)``; ``deployment_id == ""`` is the provider itself
(probed actively and judged on all its traffic). Deployments are judged on passive signals
only: their trial after the cool-down is the router's trial traffic while half-open.
Only changes of ``(status, circuit, auto_disabled)`` are published, through the outbox, in
the same transaction as the state row they describe — and, for a vLLM provider, changes of
the queue its ``/metrics`` reports at each probe (``queue_waiting`` / ``queue_running``, for
the router's ``least_busy`` strategy).

Sustained slow traffic (the passive window's average attempt latency above ``SLOW_MS``, with
at least ``PASSIVE_MIN_REQUESTS`` attempts) makes a closed target ``degraded`` until the
average is back under it; latency alone never moves the circuit (degraded still gets
traffic).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from turnout_common.events import CircuitState, HealthEvent, HealthStatus
from turnout_common.outbox import enqueue, enqueue_many
from turnout_common.topics import ALERTS, HEALTH
from turnout_health import alerts, metrics, overrides, repository
from turnout_health.circuit import Circuit
from turnout_health.probes import ProbeResult
from turnout_health.registry import ProviderConfig
from turnout_health.repository import PassiveCount, StateRow
from turnout_health.settings import HealthSettings

Target = tuple[str, str]
Published = tuple[HealthStatus, CircuitState, bool]
Queue = tuple[float | None, float | None]
SLOW_PREFIX = "passive latency: "


log = logging.getLogger(__name__)


@dataclass
class ProviderRuntime:
    circuit: Circuit
    status: HealthStatus = "unknown"
    latency_ms: float | None = None
    reason: str = ""
    slow: str | None = None  # why passive traffic is slow (closed circuit only), else None
    published: Published | None = None
    queue: Queue = (None, None)  # vLLM's (waiting, running) at the latest probe
    queue_published: Queue = (None, None)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def derive_status(
    circuit: CircuitState, result: ProbeResult | None, previous: HealthStatus
) -> HealthStatus:
    """What to report: ``down`` only once the circuit opened (one failure is not an outage)."""
    if circuit == "open":
        return "down"
    if circuit == "half_open":
        return "unknown"
    if result is None or result.verdict == "failure":
        return previous if previous != "down" else "unknown"
    return result.status


def event_key(target: Target) -> str:
    provider_id, deployment_id = target
    return f"{provider_id}:{deployment_id}" if deployment_id else provider_id


class HealthService:
    def __init__(self, pool: asyncpg.Pool, schema: str, settings: HealthSettings) -> None:
        self._pool = pool
        self._schema = schema
        self._settings = settings
        self.runtimes: dict[Target, ProviderRuntime] = {}

    @property
    def schema(self) -> str:
        return self._schema

    def _new_circuit(self) -> Circuit:
        s = self._settings
        return Circuit(s.failure_threshold, s.failure_window_s, s.cooldown_s)

    def runtime(self, provider_id: str, deployment_id: str = "") -> ProviderRuntime:
        rt = self.runtimes.get((provider_id, deployment_id))
        if rt is None:
            rt = self.runtimes[(provider_id, deployment_id)] = ProviderRuntime(self._new_circuit())
        return rt

    async def load(self) -> None:
        """Resume from the database (a new leader continues where the old one stopped)."""
        async with self._pool.acquire() as conn:
            rows = await repository.load_states(conn)
        now_mono, now_wall = time.monotonic(), datetime.now(UTC)
        self.runtimes = {}
        for row in rows:
            circuit = self._new_circuit()
            circuit.state = row.circuit  # type: ignore[assignment]
            if row.opened_at is not None:
                circuit.opened_at = now_mono - (now_wall - row.opened_at).total_seconds()
            rt = ProviderRuntime(circuit, row.status, row.latency_ms, row.reason)  # type: ignore[arg-type]
            if row.status == "degraded" and row.reason.startswith(SLOW_PREFIX):
                rt.slow = row.reason
            rt.published = (rt.status, circuit.state, row.auto_disabled)
            self.runtimes[(row.provider_id, row.deployment_id)] = rt

    async def apply_probe(self, provider: ProviderConfig, result: ProbeResult) -> None:
        rt = self.runtime(provider.id)
        async with rt.lock:
            was = rt.circuit.state
            rt.circuit.record(result.verdict, time.monotonic())
            reason = result.reason
            if rt.circuit.state == "open" and was == "closed":
                s = self._settings
                reason = (
                    f"{s.failure_threshold} failures within {s.failure_window_s:g} s;"
                    f" last: {result.reason}"
                )
            elif rt.circuit.state == "open":
                reason = f"trial probe failed: {result.reason}"
            elif was == "half_open":
                reason = f"trial probe succeeded: {result.reason}"
            rt.status = derive_status(rt.circuit.state, result, rt.status)
            if was != "closed" or rt.circuit.state != "closed":
                rt.slow = None  # a circuit change restarts the passive window
            elif rt.slow is not None and rt.status == "healthy":
                rt.status, reason = "degraded", rt.slow  # the probe is fast, traffic is not
            rt.latency_ms, rt.reason = result.latency_ms, reason
            rt.queue = (result.queue_waiting, result.queue_running)
            await self._persist(
                provider, (provider.id, ""), rt, result, circuit_changed=was != rt.circuit.state
            )

    async def enter_half_open(self, provider: ProviderConfig, deployment_id: str = "") -> None:
        rt = self.runtime(provider.id, deployment_id)
        async with rt.lock:
            rt.circuit.half_open()
            rt.status, rt.slow = "unknown", None
            trial = "trial traffic" if deployment_id else "one trial probe"
            rt.reason = f"cool-down of {self._settings.cooldown_s:g} s over; {trial}"
            await self._persist(
                provider, (provider.id, deployment_id), rt, None, circuit_changed=True
            )

    async def apply_passive(self, provider: ProviderConfig, count: PassiveCount) -> None:
        """Judge the router's own attempts since the last circuit change of the target.

        Closed: open when the error rate reaches the threshold (with enough requests); else
        ``degraded`` while the average latency is above ``SLOW_MS`` (with enough requests),
        ``healthy`` again once it is not. Half-open (deployments): close on clean trial
        traffic, re-open on any failure. A count of 0 requests means an empty window.
        """
        s = self._settings
        rt = self.runtime(provider.id, count.deployment_id)
        async with rt.lock:
            state, now = rt.circuit.state, time.monotonic()
            avg = count.latency_ms_sum / count.requests if count.requests else None
            if state == "half_open" and count.deployment_id and count.requests:
                if count.errors:
                    rt.circuit.trip(now)
                    rt.status, rt.reason = "down", f"trial traffic failed ({count.errors} errors)"
                else:
                    rt.circuit.record("success", now)
                    rt.status, rt.reason = "healthy", f"trial traffic succeeded ({count.requests})"
                rt.slow = None
            elif (
                state == "closed"
                and count.requests >= s.passive_min_requests
                and count.errors / count.requests >= s.passive_error_rate
            ):
                rt.circuit.trip(now)
                rt.status, rt.slow = "down", None
                rt.reason = (
                    f"passive: {count.errors}/{count.requests} attempts failed in the last "
                    f"{s.passive_window_s:g} s"
                )
            elif state != "closed" or not self._judge_latency(rt, count, avg):
                return
            if avg is not None:
                rt.latency_ms = avg
            target = (provider.id, count.deployment_id)
            await self._persist(
                provider, target, rt, None, circuit_changed=state != rt.circuit.state
            )

    def _judge_latency(self, rt: ProviderRuntime, count: PassiveCount, avg: float | None) -> bool:
        """Sustained slow traffic -> ``degraded``; back under ``PASSIVE_SLOW_MS`` -> ``healthy``.
        Only a status this judgement set is reverted (a slow probe's stays). True if the
        status changed."""
        s = self._settings
        slow = None
        limit = s.passive_slow_ms
        if avg is not None and count.requests >= s.passive_min_requests and avg > limit:
            slow = (
                f"{SLOW_PREFIX}average {avg:.0f} ms > {limit:.0f} ms over"
                f" {count.requests} attempts in the last {s.passive_window_s:g} s"
            )
        rt.slow = slow
        # a deployment is judged on traffic only: "unknown" there just means "not judged yet"
        fresh = rt.status == "healthy" or (count.deployment_id != "" and rt.status == "unknown")
        if slow is not None and fresh:
            rt.status, rt.reason = "degraded", slow
            return True
        if slow is None and rt.status == "degraded" and rt.reason.startswith(SLOW_PREFIX):
            rt.status = "healthy"
            rt.reason = (
                f"{SLOW_PREFIX}average {avg:.0f} ms <= {limit:.0f} ms again"
                if avg is not None and count.requests >= s.passive_min_requests
                else f"{SLOW_PREFIX}no sustained slow traffic in the last {s.passive_window_s:g} s"
            )
            return True
        return False

    async def forget(self, provider_id: str) -> None:
        """The provider left the config: drop its state and tombstone its health keys."""
        targets = [t for t in self.runtimes if t[0] == provider_id]
        async with self._pool.acquire() as conn, conn.transaction():
            await repository.delete_state(conn, provider_id)
            await conn.execute("DELETE FROM overrides WHERE provider_id = $1", provider_id)
            for target in targets:
                del self.runtimes[target]
                await enqueue(conn, self._schema, HEALTH.name, event_key(target), None)
                metrics.forget(event_key(target))

    async def _persist(
        self,
        provider: ProviderConfig,
        target: Target,
        rt: ProviderRuntime,
        result: ProbeResult | None,
        *,
        circuit_changed: bool,
    ) -> None:
        circuit, now = rt.circuit, time.monotonic()
        auto_disabled = circuit.state == "open" and not provider.is_system
        current: Published = (rt.status, circuit.state, auto_disabled)
        changed = current != rt.published
        # a vLLM queue that moved is published too (for least_busy), without a transition
        queue_changed = not target[1] and rt.queue != rt.queue_published
        opened_at = None
        if circuit.opened_at is not None:
            opened_at = datetime.now(UTC) - timedelta(seconds=now - circuit.opened_at)
        row = StateRow(
            target[0],
            target[1],
            rt.status,
            circuit.state,
            auto_disabled,
            rt.latency_ms,
            rt.reason,
            circuit.failure_count(now),
            opened_at,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            if result is not None:
                await repository.insert_probe(conn, provider.id, result, circuit.state)
            await repository.save_state(
                conn,
                row,
                changed=changed,
                circuit_changed=circuit_changed,
                probed=result is not None,
            )
            if (changed or queue_changed) and not target[1]:
                if await overrides.active(conn, target[0]):
                    # an admin's override is what the router sees meanwhile
                    changed = queue_changed = False
            if changed or queue_changed:
                event = HealthEvent(
                    provider_id=provider.id,
                    deployment_id=target[1] or None,
                    status=rt.status,
                    circuit=circuit.state,
                    latency_ms=rt.latency_ms,
                    reason=rt.reason,
                    auto_disabled=auto_disabled,
                    queue_waiting=rt.queue[0] if not target[1] else None,
                    queue_running=rt.queue[1] if not target[1] else None,
                )
                await enqueue(conn, self._schema, HEALTH.name, event_key(target), event.to_bytes())
                rt.queue_published = rt.queue
                if changed:
                    found = alerts.transitions(
                        provider.id, provider.name, target[1], rt.published, current, rt.reason
                    )
                    await enqueue_many(
                        conn, self._schema, ALERTS.name, [(a.key, a.to_bytes()) for a in found]
                    )
        if changed:
            before = rt.published
            rt.published = current
            metrics.TRANSITIONS.labels(rt.status, circuit.state).inc()
            log.info(
                "provider %r%s: %s, circuit %s (was %s)%s",
                provider.name, f" deployment {target[1]}" if target[1] else "", rt.status,
                circuit.state, "/".join(map(str, before[:2])) if before else "unknown",
                f": {rt.reason}" if rt.reason else "",
            )  # fmt: skip
        metrics.observe_state(event_key(target), rt.status, circuit.state)
