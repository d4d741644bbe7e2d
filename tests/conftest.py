"""Cross-service end-to-end fixtures: the whole system started as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from turnout_common.crypto import generate_key
from turnout_common.devinfra import TansuBroker, free_port
from turnout_common.testing.plugin import fresh_database, kafka_env


@dataclass
class System:
    """A running `turnout up` (four services as subprocesses) and how to reach it."""

    proc: subprocess.Popen[bytes]
    state_dir: Path
    info: dict[str, str]
    env: dict[str, str]
    log_path: Path
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.info['admin_token']}"}

    def url(self, service: str) -> str:
        return self.info[f"{service}_url"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_system(
    state_dir: Path,
    database_url: str,
    kafka_bootstrap: str,
    extra_env: dict[str, str] | None = None,
    timeout: float = 90,
) -> System:
    ports = {
        f"TURNOUT_{k}_PORT": str(free_port())
        for k in ("ROUTER", "CONFIG_API", "HEALTH", "METERING", "CONSOLE")
    }
    env = {
        **os.environ,
        **kafka_env(kafka_bootstrap),
        **ports,
        "TURNOUT_DATABASE_URL": database_url,
        "TURNOUT_CONFIG_URL": f"http://127.0.0.1:{ports['TURNOUT_CONFIG_API_PORT']}",
        "TURNOUT_ENCRYPTION_KEYS": generate_key(),
        "TURNOUT_ADMIN_TOKEN": "tadm-e2e-" + os.urandom(8).hex(),
        **(extra_env or {}),
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "up.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnout", "up", "--state-dir", str(state_dir)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    up_json = state_dir / "up.json"
    started = time.monotonic()
    while not up_json.exists():
        if proc.poll() is not None or time.monotonic() - started > timeout:
            proc.kill()
            raise RuntimeError("turnout up did not become ready:\n" + log_path.read_text())
        time.sleep(0.2)
    return System(proc, state_dir, json.loads(up_json.read_text()), env, log_path)


def stop_system(system: System) -> None:
    if system.proc.poll() is None:
        system.proc.send_signal(signal.SIGINT)
        try:
            system.proc.wait(30)
        except subprocess.TimeoutExpired:
            system.proc.kill()


@pytest.fixture(scope="session")
def system_broker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[str]:
    """A broker of the system's own, so no other test's events reach it (Tansu, when local)."""
    if (
        os.environ.get("TURNOUT_TEST_KAFKA_BOOTSTRAP")
        or os.environ.get("TURNOUT_TEST_TESTCONTAINERS") == "1"
    ):
        yield kafka_bootstrap
        return
    broker = TansuBroker(log_path=tmp_path_factory.mktemp("system-tansu") / "tansu.log")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def system(
    tmp_path_factory: pytest.TempPathFactory, pg_server_dsn: str, system_broker: str
) -> Iterator[System]:
    """The whole system, once per test run, on a database and broker of its own."""
    with fresh_database(pg_server_dsn, "turnout_e2e") as dsn:
        sys_ = start_system(tmp_path_factory.mktemp("system"), dsn, system_broker)
        try:
            yield sys_
        finally:
            stop_system(sys_)


@pytest.fixture(scope="session")
def start_own_system(
    tmp_path_factory: pytest.TempPathFactory, pg_server_dsn: str
) -> Callable[..., contextlib.AbstractContextManager[System]]:
    """``with start_own_system("name", extra_env) as system:`` another whole system, on a
    database and a Tansu broker of its own (so its events never mix with ``system``'s)."""

    @contextlib.contextmanager
    def start(name: str, extra_env: dict[str, str] | None = None) -> Iterator[System]:
        state = tmp_path_factory.mktemp(name)
        broker = TansuBroker(log_path=state / "tansu.log")
        broker.start()
        try:
            with fresh_database(pg_server_dsn, f"turnout_{name}") as dsn:
                sys_ = start_system(state / "up", dsn, broker.bootstrap, extra_env)
                try:
                    yield sys_
                finally:
                    stop_system(sys_)
        finally:
            broker.stop()

    return start
