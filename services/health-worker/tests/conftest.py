"""Fixtures: a running health worker against real PostgreSQL, Kafka and local upstreams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from turnout_common.auth import token_hash
from turnout_common.broker import Producer, ensure_topics
from turnout_common.events import HealthEvent
from turnout_common.follow import TopicFollower
from turnout_common.oidc import OidcSettings
from turnout_common.settings import KafkaSettings
from turnout_common.testing.oidc import Jwks
from turnout_common.testing.servers import LocalServer
from turnout_common.topics import CONFIG, HEALTH, USAGE
from turnout_health.app import create_app
from turnout_health.testing import (
    FAST,
    MINTED,
    Harness,
    Snapshot,
    make_settings,
    running,
    wait_until,
)


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    return Snapshot(
        entities=[
            {
                "revision": 1,
                "entity": "admin_token",
                "entity_id": "tok1",
                "op": "upsert",
                "data": {
                    "id": "tok1",
                    "name": "ci",
                    "token_hash": token_hash(MINTED),
                    "revoked": False,
                },
            }
        ]
    )


@pytest.fixture(scope="session")
def snapshot_server(snapshot: Snapshot) -> Any:
    with LocalServer(snapshot.app()) as srv:
        yield srv


@pytest.fixture(scope="session")
def sso() -> Iterator[Jwks]:
    """A local OIDC issuer (JWKS over HTTP) the harness trusts for admin SSO."""
    with Jwks() as jwks:
        yield jwks


@pytest.fixture(scope="session")
async def harness(
    database_url: str, kafka_settings: KafkaSettings, snapshot_server: LocalServer, sso: Jwks
) -> AsyncIterator[Harness]:
    """One health worker (fast settings) shared by the lifecycle tests."""
    await ensure_topics(kafka_settings, [CONFIG, HEALTH, USAGE])
    events: list[HealthEvent] = []
    tombstones: list[str] = []

    def on_health(key: bytes | None, value: bytes | None) -> None:
        if value is None:
            tombstones.append((key or b"").decode())
        else:
            events.append(HealthEvent.model_validate_json(value))

    follower = TopicFollower(kafka_settings, HEALTH.name, on_health, from_beginning=False)
    await follower.start()
    follower.start_background()
    producer = Producer(kafka_settings)
    await producer.start()
    common, hs = make_settings(
        database_url, kafka_settings, snapshot_server.url, f"health_{uuid.uuid4().hex[:8]}", **FAST
    )
    app = create_app(common, hs, OidcSettings.model_validate(sso.settings()))
    try:
        async with running(app) as client:
            await wait_until(lambda: app.state.usage.assigned and app.state.worker.lease.is_leader)
            yield Harness(app, client, producer, events, tombstones, hs)
    finally:
        await producer.stop()
        await follower.stop()
