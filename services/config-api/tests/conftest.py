"""Fixtures: one config-api app (real Postgres, real broker, local JWKS server) per run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from turnout_common.crypto import generate_key
from turnout_common.events import ConfigEvent
from turnout_common.settings import KafkaSettings
from turnout_common.testing.oidc import Jwks
from turnout_common.topics import CONFIG
from turnout_config_api.app import create_app
from turnout_config_api.settings import ConfigApiSettings

ADMIN_TOKEN = "bootstrap-admin-token-for-tests-0001"
ISSUER = "https://sso.test/realms/turnout"
AUDIENCE = "turnout-admin"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "broker_restart: restarts the broker; runs last")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that restart the (memory-only) broker run last: Tansu comes back empty and
    auto-creates topics with 4 partitions on the first produce, which would reorder others."""
    items.sort(key=lambda item: item.get_closest_marker("broker_restart") is not None)


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[Jwks]:
    with Jwks(ISSUER, AUDIENCE) as jwks:
        yield jwks


@pytest.fixture(scope="session")
def old_key() -> str:
    return generate_key()


@pytest.fixture(scope="session")
def settings(
    database_url: str, kafka_settings: KafkaSettings, jwks_server: Jwks, old_key: str
) -> ConfigApiSettings:
    return ConfigApiSettings.model_validate(
        {
            "database_url": database_url,
            "encryption_keys": old_key,
            "admin_token": ADMIN_TOKEN,
            "kafka": kafka_settings,
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": f"{jwks_server.server.url}/certs",
            "outbox_poll_interval_s": 0.2,
            "probe_timeout_s": 3,
            "db_pool_max": 5,
        }
    )


@pytest.fixture(scope="session")
async def app(settings: ConfigApiSettings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://config-api") as c:
        yield c


@pytest.fixture(scope="session")
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Unique names per test (the database is shared by the whole run)."""
    counter = iter(range(10_000))
    stamp = f"{time.monotonic_ns() % 10**9:09d}"

    def make(prefix: str) -> str:
        return f"{prefix}-{stamp}-{next(counter)}"

    return make


async def read_config_events(
    kafka: KafkaSettings, done: Callable[[list[ConfigEvent]], bool], timeout: float = 20.0
) -> list[ConfigEvent]:
    """Read ``turnout.config.v1`` from the beginning until ``done(events)`` holds."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
    )
    await consumer.start()
    events: list[ConfigEvent] = []
    try:
        partitions = await consumer.topics() and consumer.partitions_for_topic(CONFIG.name)
        tps = [TopicPartition(CONFIG.name, p) for p in sorted(partitions or {0})]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(timeout):
            while not done(events):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for rec in records:
                        assert rec.value is not None
                        event = ConfigEvent.from_bytes(rec.value)
                        assert rec.key == event.key.encode()
                        events.append(event)
    finally:
        await consumer.stop()
    return events


EventsReader = Callable[..., Any]


@pytest.fixture
def config_events(kafka_settings: KafkaSettings) -> EventsReader:
    """``await config_events(done)`` -> every event on the topic once ``done(events)`` holds."""

    async def read(done: Callable[[list[ConfigEvent]], bool], timeout: float = 20.0) -> Any:
        return await read_config_events(kafka_settings, done, timeout)

    return read


@pytest.fixture
def jwt_token(jwks_server: Jwks) -> Callable[..., str]:
    return jwks_server.token
