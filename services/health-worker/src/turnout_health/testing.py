"""Test support for the health worker: a config snapshot stand-in and a harness around a
running app (used by this package's tests; never by the service itself)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web
from fastapi import FastAPI
from pydantic import SecretStr

from turnout_common.broker import Producer
from turnout_common.crypto import generate_key
from turnout_common.events import Attempt, ConfigEntity, ConfigEvent, HealthEvent, UsageEvent
from turnout_common.settings import CommonSettings, KafkaSettings
from turnout_common.topics import CONFIG, USAGE
from turnout_health.settings import HealthSettings

ADMIN = "bootstrap-admin-token"
MINTED = "minted-admin-token-1234"
ENCRYPTION_KEY = generate_key()
_revisions = itertools.count(1000)

FAST = {
    "probe_interval_s": 0.2,
    "probe_jitter": 0.1,
    "probe_timeout_s": 0.3,
    "failure_threshold": 3,
    "failure_window_s": 5.0,
    "cooldown_s": 0.5,
    "passive_window_s": 5.0,
    "passive_min_requests": 4,
    "passive_error_rate": 0.5,
    "passive_flush_s": 0.1,
    "leader_retry_s": 0.2,
    "slow_ms": 2000.0,
    "passive_slow_ms": 2000.0,
}


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling state owned by other tasks
            await asyncio.sleep(0.02)


def provider_data(provider_id: str, base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": provider_id,
        "name": f"p-{provider_id[:6]}",
        "kind": "vllm",
        "base_url": base_url,
        "enabled": True,
        "api_key_encrypted": None,
        "api_key_hint": None,
        "is_system": False,
        "timeout_s": 30,
        **extra,
    }


@dataclass
class Snapshot:
    """A stand-in for config-api's snapshot endpoint."""

    entities: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def snapshot(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Bearer {ADMIN}":
                return web.json_response({"error": "no"}, status=401)
            return web.json_response({"revision": 999, "entities": self.entities})

        app = web.Application()
        app.router.add_get("/api/v1/snapshot", snapshot)
        return app


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    producer: Producer
    events: list[HealthEvent]
    tombstones: list[str]
    settings: HealthSettings

    async def publish_config(
        self, entity: ConfigEntity, entity_id: str, data: dict[str, Any] | None
    ) -> None:
        event = ConfigEvent(
            revision=next(_revisions),
            entity=entity,
            entity_id=entity_id,
            op="upsert" if data is not None else "delete",
            data=data,
        )
        await self.producer.send(CONFIG.name, event.to_bytes(), key=event.key.encode())

    def events_for(self, provider_id: str, deployment_id: str | None = None) -> list[HealthEvent]:
        """Events of the provider itself, or of one of its deployments."""
        return [
            e
            for e in self.events
            if e.provider_id == provider_id and e.deployment_id == deployment_id
        ]

    async def wait_event(
        self,
        provider_id: str,
        predicate: Callable[[HealthEvent], bool],
        timeout: float = 15.0,
        deployment_id: str | None = None,
    ) -> float:
        """Wait for a matching event; returns the monotonic time it was seen."""
        await wait_until(
            lambda: any(predicate(e) for e in self.events_for(provider_id, deployment_id)),
            timeout,
        )
        return time.monotonic()

    async def send_usage(
        self,
        provider_id: str,
        deployment_id: str,
        statuses: list[int | None],
        latency_ms: float = 40.0,
    ) -> None:
        """One usage record per status (None = connect error), each with one attempt."""
        for status in statuses:
            attempt = Attempt(
                provider_id=provider_id,
                provider="p",
                model="m",
                upstream_model="m",
                deployment_id=deployment_id,
                status=status,
                error=None if status else "connect_error",
                latency_ms=latency_ms,
            )
            event = UsageEvent(
                request_id=str(uuid.uuid4()), provider_id=provider_id, attempts=[attempt]
            )
            await self.producer.send(USAGE.name, event.to_bytes(), key=event.request_id.encode())


def make_settings(
    database_url: str, kafka: KafkaSettings, config_url: str, schema: str, **health: Any
) -> tuple[CommonSettings, HealthSettings]:
    common = CommonSettings(
        database_url=SecretStr(database_url),
        admin_token=SecretStr(ADMIN),
        encryption_keys=SecretStr(ENCRYPTION_KEY),
        config_url=config_url,
        kafka=kafka,
        db_pool_max=5,
    )
    hs = HealthSettings(schema_name=schema, usage_group=f"health-{uuid.uuid4().hex[:8]}", **health)
    return common, hs


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://health") as client:
            yield client
