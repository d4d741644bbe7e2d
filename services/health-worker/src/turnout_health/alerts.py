"""Provider alerts on ``turnout.alerts.v1``: down, recovered, circuit open — once per change.

Derived from the same published state changes as ``turnout.health.v1`` (and put in the outbox
in the same transaction), so an alert is emitted once per crossing, also across restarts and
leader changes (the last published state is stored). For a provider itself, ``down`` is its
circuit being open: that is ``provider_down`` (``auth_failed`` too); a deployment's circuit
opening is ``circuit_open``. Leaving those states for a serving one (circuit closed again) is
``provider_recovered``; a failed trial while half-open is the same outage, not a new one.
"""

from __future__ import annotations

from typing import Literal

from turnout_common.events import AlertEvent, AlertKind, CircuitState, HealthStatus

Published = tuple[HealthStatus, CircuitState, bool]
_OUT = ("down", "auth_failed")
Severity = Literal["info", "warning", "critical"]


def transitions(
    provider_id: str,
    name: str,
    deployment_id: str,
    before: Published | None,
    now: Published,
    reason: str,
) -> list[AlertEvent]:
    status, circuit, _ = now
    was_status, was_circuit = (before[0], before[1]) if before else ("unknown", "closed")
    where = f"provider {name!r}" + (f" deployment {deployment_id}" if deployment_id else "")
    details = {
        "provider_id": provider_id,
        "provider": name,
        "deployment_id": deployment_id or None,
        "status": status,
        "circuit": circuit,
        "reason": reason,
    }

    def alert(kind: AlertKind, severity: Severity, summary: str) -> list[AlertEvent]:
        return [
            AlertEvent(
                alert=kind,
                severity=severity,
                subject_type="provider",
                subject_id=provider_id,
                summary=summary,
                details=details,
            )
        ]

    why = f": {reason}" if reason else ""
    # a half-open circuit is still out: its failed trial is not a new outage
    was_out = was_circuit != "closed" or was_status in _OUT
    if not deployment_id:
        if status in _OUT and not was_out:
            summary = f"{where} is {status}, circuit {circuit}{why}"
            return alert("provider_down", "critical", summary)
        if was_out and circuit == "closed" and status in ("healthy", "degraded"):
            return alert("provider_recovered", "info", f"{where} recovered: {status}")
        return []
    if circuit == "open" and was_circuit == "closed":
        return alert("circuit_open", "warning", f"{where}: circuit open{why}")
    if was_circuit != "closed" and circuit == "closed":
        return alert("provider_recovered", "info", f"{where} recovered: circuit closed")
    return []
