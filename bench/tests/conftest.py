"""Bench scripts are standalone files, not a package: make them importable in tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from turnout_common.devinfra import free_port, port_open

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


def start_mock(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None, "mock_upstream exited"
        assert time.monotonic() < deadline, "mock_upstream did not start"
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def mock_factory() -> Iterator[Callable[..., str]]:
    """Start extra mocks with given flags; all stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def factory(*args: str) -> str:
        proc, url = start_mock(*args)
        procs.append(proc)
        return url

    yield factory
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    proc, url = start_mock()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def slow_stream_url() -> Iterator[str]:
    proc, url = start_mock("--delay-ms", "5", "--chunk-delay-ms", "2", "--chunks", "5")
    yield url
    proc.terminate()
    proc.wait(10)
