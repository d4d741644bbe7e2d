"""Prometheus metrics (default registry, exposed at ``/metrics``)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

PROBE_LATENCY = Histogram(
    "turnout_health_probe_latency_seconds",
    "Active probe latency by provider kind and resulting status",
    ["kind", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CIRCUIT_STATE = Gauge(
    "turnout_health_circuit_state",
    "Circuit per provider: 0 closed, 1 half_open, 2 open",
    ["provider_id"],
)
PROVIDER_STATUS = Gauge(
    "turnout_health_provider_status",
    "1 for the provider's current status, 0 for the others",
    ["provider_id", "status"],
)
TRANSITIONS = Counter(
    "turnout_health_transitions_total",
    "Published state changes",
    ["status", "circuit"],
)
LEADER = Gauge("turnout_health_leader", "1 if this replica runs the probes")

_CIRCUIT_VALUE = {"closed": 0, "half_open": 1, "open": 2}
_STATUSES = ("healthy", "degraded", "down", "auth_failed", "unknown")


def observe_state(provider_id: str, status: str, circuit: str) -> None:
    CIRCUIT_STATE.labels(provider_id).set(_CIRCUIT_VALUE.get(circuit, 0))
    for name in _STATUSES:
        PROVIDER_STATUS.labels(provider_id, name).set(1 if name == status else 0)


def forget(provider_id: str) -> None:
    for name in _STATUSES:
        with contextlib.suppress(KeyError):
            PROVIDER_STATUS.remove(provider_id, name)
    with contextlib.suppress(KeyError):
        CIRCUIT_STATE.remove(provider_id)
