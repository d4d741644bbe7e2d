"""What the lifespan builds and endpoints use (typed; reached via ``deps``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
import httpx

from turnout_common.crypto import KeyRing
from turnout_common.oidc import OidcVerifier
from turnout_common.outbox import OutboxRelay
from turnout_config_api.health_view import HealthView
from turnout_config_api.relay import RelaySender
from turnout_config_api.settings import ConfigApiSettings


@dataclass
class AppState:
    settings: ConfigApiSettings
    ring: KeyRing
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    oidc: OidcVerifier | None = None
    relay: OutboxRelay | None = None
    sender: RelaySender | None = None
    relay_task: asyncio.Task[None] | None = field(default=None, repr=False)
    health: HealthView = field(default_factory=HealthView)
    health_task: asyncio.Task[None] | None = field(default=None, repr=False)

    def relay_stuck(self) -> bool:
        return self.relay is not None and self.relay.stuck()

    def relay_alive(self) -> bool:
        return self.relay_task is not None and not self.relay_task.done()
