"""The providers' latest health, from ``turnout.health.v1`` (SPEC §1: health-worker → config-api).

Shown on ``GET /providers`` so an admin sees that a provider is down or auto-disabled where
they configure it. In memory, rebuilt from the topic at start; never blocks the API: while
the broker is unreachable the view keeps what it has and retries in the background.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from turnout_common.events import HealthEvent
from turnout_common.follow import TopicFollower
from turnout_common.settings import KafkaSettings
from turnout_common.topics import HEALTH
from turnout_config_api.schemas.providers import ProviderHealth

if TYPE_CHECKING:
    from turnout_common.tracing import ServiceTracing

log = logging.getLogger(__name__)


class HealthView:
    def __init__(self) -> None:
        self._providers: dict[str, HealthEvent] = {}
        self._deployments: dict[str, dict[str, HealthEvent]] = {}
        self.records = 0

    def apply(self, _key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        try:
            ev = HealthEvent.model_validate_json(value)
        except ValidationError:
            log.warning("ignoring a malformed health event")
            return
        self.records += 1
        if ev.deployment_id:
            self._deployments.setdefault(ev.provider_id, {})[ev.deployment_id] = ev
        else:
            self._providers[ev.provider_id] = ev

    def of(self, provider_id: str) -> ProviderHealth | None:
        ev = self._providers.get(provider_id)
        deps = self._deployments.get(provider_id, {})
        if ev is None and not deps:
            return None
        sick = sorted(d for d, e in deps.items() if e.status != "healthy")
        if ev is None:  # only deployment-level states so far
            return ProviderHealth(
                status="unknown",
                circuit="closed",
                auto_disabled=False,
                reason="",
                latency_ms=None,
                changed_at=max(e.occurred_at for e in deps.values()),
                degraded_deployments=sick,
            )
        return ProviderHealth(
            status=ev.status,
            circuit=ev.circuit,
            auto_disabled=ev.auto_disabled,
            reason=ev.reason,
            latency_ms=ev.latency_ms,
            changed_at=ev.occurred_at,
            degraded_deployments=sick,
        )


async def follow_health(
    view: HealthView,
    kafka: KafkaSettings,
    retry_s: float = 2.0,
    *,
    tracing: ServiceTracing | None = None,
) -> None:
    """Keep ``view`` up to date forever (cancel to stop); reconnects after broker outages.
    With ``tracing``, an event carrying a trace context is applied in a CONSUMER span."""
    while True:
        follower = TopicFollower(
            kafka, HEALTH.name, view.apply, name="config-health", tracing=tracing
        )
        try:
            await follower.start()
            await follower.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("health view: %s; retrying in %gs", exc, retry_s)
        finally:
            await follower.stop()
        await asyncio.sleep(retry_s)
