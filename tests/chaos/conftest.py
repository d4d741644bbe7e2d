"""Chaos harness: the real services as OS processes, each killable on its own.

Every test gets a system of its own: a fresh PostgreSQL database, its own Tansu broker (so it
can be stopped and restarted on the same port) and the four services started as
``python -m turnout serve <service>`` subprocesses (as one pod each would run them), plus
upstream LLM servers as subprocesses (``bench/mock_upstream.py``: fast, deterministic usage
blocks) that a test can kill. Load comes from concurrent ``aiohttp`` clients in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import orjson
import pytest

from turnout.migrate import migrate_all
from turnout.services import SERVICES
from turnout_common.crypto import generate_key
from turnout_common.devinfra import TansuBroker, free_port, port_open, stop_processes
from turnout_common.testing.plugin import fresh_database, kafka_env

REPO = Path(__file__).resolve().parents[2]
MOCK_UPSTREAM = REPO / "bench" / "mock_upstream.py"
MODEL = "chaos-chat"
SERVICE_ORDER = ("config-api", "metering", "health-worker", "router")


def _tail(path: Path, lines: int = 40, *, grep: bool = False) -> str:
    """The last ``lines`` of a log (with ``grep``: of its lines not from aiokafka itself)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kept = [ln for ln in text.splitlines() if not grep or " aiokafka" not in ln]
    return "\n".join(kept[-lines:])


@dataclass
class Upstream:
    """One OpenAI-compatible upstream server process (a deployment's backend)."""

    name: str
    log_path: Path
    delay_ms: int = 10
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 15.0) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(MOCK_UPSTREAM),
                "--port",
                str(self.port),
                "--delay-ms",
                str(self.delay_ms),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"upstream {self.name} did not start:\n{_tail(self.log_path)}")
            time.sleep(0.05)

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)


class ChaosSystem:
    """Database, broker, upstreams and the four services of one chaos test."""

    def __init__(self, root: Path, dsn: str, broker: TansuBroker) -> None:
        self.root = root
        self.dsn = dsn
        self.broker = broker
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in SERVICES}
        self.admin_token = "tadm-chaos-" + os.urandom(8).hex()
        self.env = {
            **os.environ,
            **kafka_env(broker.bootstrap),
            "TURNOUT_DATABASE_URL": dsn,
            "TURNOUT_STATE_DIR": str(root / "state"),
            "TURNOUT_ENCRYPTION_KEYS": generate_key(),
            "TURNOUT_ADMIN_TOKEN": self.admin_token,
            "TURNOUT_CONFIG_URL": self.url("config-api"),
            "TURNOUT_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        for name, spec in SERVICES.items():
            self.env[f"TURNOUT_{spec.port_setting.upper()}"] = str(self.ports[name])
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.upstreams: dict[str, Upstream] = {}
        self.key = ""
        self.key_id = ""
        self.user_id = "chaos-user"

    # --- addresses ---------------------------------------------------------------------
    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def log_path(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def diagnostics(self) -> str:
        parts = [
            f"--- {name} ---\n{_tail(self.log_path(name), grep=name == 'router')}"
            for name in SERVICES
        ]
        if self.broker.log_path is not None:
            parts.append(f"--- tansu ---\n{_tail(self.broker.log_path, 15)}")
        return "\n".join(parts)

    # --- processes ---------------------------------------------------------------------
    def start(
        self,
        service: str,
        *,
        port: int | None = None,
        tag: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        """Start ``service``; ``tag`` names a second instance (own log, own port)."""
        env = {**self.env, **(env or {})}
        if port is not None:
            env[f"TURNOUT_{SERVICES[service].port_setting.upper()}"] = str(port)
        log = open(self.logs / f"{service}{tag}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "turnout", "serve", service],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs[service + tag] = proc

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        """Signal one service and wait for it to exit; returns its exit code."""
        proc = self.procs.pop(service)
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(30)

    def alive(self, service: str) -> bool:
        proc = self.procs.get(service)
        return proc is not None and proc.poll() is None

    def wait_ready(self, services: tuple[str, ...], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services)
        with httpx.Client(timeout=2) as client:
            while pending:
                for name in list(pending):
                    if not self.alive(name):
                        raise RuntimeError(f"{name} exited:\n{_tail(self.log_path(name))}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(self.url(name) + "/readyz").status_code == 200:
                            pending.remove(name)
                if pending and time.monotonic() > deadline:
                    raise RuntimeError(f"not ready: {pending}\n{self.diagnostics()}")
                time.sleep(0.1)

    async def await_ready(self, service: str, url: str | None = None, timeout: float = 90) -> None:
        await poll(
            lambda: self.ready(url or self.url(service)),
            timeout,
            f"{service} ready",
            self.diagnostics,
        )

    async def ready(self, base_url: str) -> bool:
        return await readyz(base_url) == 200

    def stop_all(self) -> None:
        stop_processes(self.procs.values(), grace_s=15)
        self.procs.clear()
        for up in self.upstreams.values():
            up.kill()

    # --- configuration -----------------------------------------------------------------
    def add_upstream(self, name: str, delay_ms: int = 10) -> Upstream:
        up = Upstream(name, self.logs / f"upstream-{name}.log", delay_ms)
        up.start()
        self.upstreams[name] = up
        return up

    def configure(self, deployments: list[tuple[str, int]]) -> None:
        """One provider per (upstream name, priority), each serving ``MODEL``; a user + key."""
        api = self.url("config-api") + "/api/v1"
        with httpx.Client(headers=self.admin, timeout=15) as c:
            for name, priority in deployments:
                r = c.post(
                    f"{api}/providers",
                    json={
                        "name": name,
                        "kind": "openai_compatible",
                        "base_url": self.upstreams[name].base_url,
                        "api_key": f"sk-{name}-0123456789",
                        "priority": priority,
                        "timeout_s": 10,
                    },
                )
                assert r.status_code == 201, r.text
                r = c.post(
                    f"{api}/models",
                    json={
                        "provider": name,
                        "upstream_model": "mock-model",
                        "name": MODEL,
                        "purposes": ["chat"],
                        "input_price_per_mtok": 0.5,
                        "output_price_per_mtok": 1.5,
                    },
                )
                assert r.status_code == 201, r.text
            # a tier without rate limits: the load is the point, not the limiter
            r = c.put(
                f"{api}/tiers/chaos",
                json={"rank": 3, "monthly_credits_usd": "1000", "rpm_limit": None},
            )
            assert r.status_code == 200, r.text
            r = c.post(f"{api}/users", json={"id": self.user_id, "tier": "chaos"})
            assert r.status_code == 201, r.text
            r = c.post(f"{api}/keys", json={"user_id": self.user_id, "name": "chaos"})
            assert r.status_code == 201, r.text
            self.key, self.key_id = r.json()["key"], r.json()["id"]
        # the router learns config from the topic: wait until it serves the key and model
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=5) as c:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    r = c.get(
                        self.url("router") + "/v1/models",
                        headers={"Authorization": f"Bearer {self.key}"},
                    )
                    if r.status_code == 200 and MODEL in {m["id"] for m in r.json()["data"]}:
                        break
                assert time.monotonic() < deadline, self.diagnostics()
                time.sleep(0.1)

    # --- metering's view ---------------------------------------------------------------
    async def usage_stats(self) -> dict[str, Any]:
        conn = await asyncpg.connect(self.dsn)
        try:
            row = await conn.fetchrow(
                """SELECT count(*) AS rows, count(DISTINCT request_id) AS ids,
                          coalesce(sum(input_tokens), 0) AS input_tokens,
                          coalesce(sum(output_tokens), 0) AS output_tokens,
                          coalesce(sum(cost_usd), 0) AS cost
                   FROM metering.usage_log WHERE outcome = 'success'"""
            )
            others = await conn.fetchval(
                "SELECT count(*) FROM metering.usage_log WHERE outcome <> 'success'"
            )
            daily = await conn.fetchrow(
                """SELECT coalesce(sum(requests), 0) AS requests,
                          coalesce(sum(input_tokens), 0) AS input_tokens,
                          coalesce(sum(output_tokens), 0) AS output_tokens,
                          coalesce(sum(cost_usd), 0) AS cost
                   FROM metering.usage_daily WHERE outcome = 'success'"""
            )
            spend = await conn.fetchrow(
                """SELECT coalesce(sum(requests), 0) AS requests,
                          coalesce(sum(spent_usd), 0) AS spent
                   FROM metering.spend WHERE subject_type = 'user'"""
            )
        finally:
            await conn.close()
        return {**dict(row), "others": others, "daily": dict(daily), "spend": dict(spend)}

    async def usage_rows(self) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(
                await conn.fetch(
                    "SELECT request_id, input_tokens, output_tokens, status, outcome, provider,"
                    " fallbacks FROM metering.usage_log"
                )
            )
        finally:
            await conn.close()

    async def wait_metered(self, expected: int, timeout: float = 90.0) -> float:
        """Poll metering until ``expected`` successful requests are metered; returns the
        seconds it took (failing at once if there are more: something was counted twice)."""
        t0 = time.monotonic()
        rows = -1

        async def done() -> bool:
            nonlocal rows
            stats = await self.usage_stats()
            rows = stats["rows"]
            assert rows <= expected, f"more usage rows than requests: {stats}"
            return bool(rows == expected)

        await poll(
            done,
            timeout,
            f"{expected} usage rows in metering",
            lambda: f"(have {rows})\n{self.diagnostics()}",
        )
        return time.monotonic() - t0


async def readyz(base_url: str) -> int:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s,
            s.get(base_url + "/readyz") as r,
        ):
            return r.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def poll(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] | None = None,
    interval: float = 0.1,
) -> None:
    """Wait until ``check()`` is true; fail with the services' logs after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            detail = diagnostics() if diagnostics else ""
            raise AssertionError(f"timed out waiting for {what}\n{detail}")
        await asyncio.sleep(interval)


# --- load --------------------------------------------------------------------------------
@dataclass
class Outcome:
    index: int
    request_id: str
    stream: bool
    provider: str
    fallbacks: int
    input_tokens: int
    output_tokens: int


@dataclass
class Load:
    """Concurrent clients sending chat requests until ``total`` are done or ``stop()``."""

    url: str
    key: str
    concurrency: int = 8
    total: int | None = None
    stream_every: int = 0
    """every n-th request streams (0: none)"""
    hold_at: int | None = None
    """start no request after this many until :meth:`release` (a fault lands mid-stream)"""
    ok: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @property
    def done(self) -> int:
        return len(self.ok) + len(self.errors)

    def start(self) -> Load:
        self._task = asyncio.create_task(self._run())
        return self

    def stop(self) -> None:
        self._stop.set()
        self._released.set()

    def release(self) -> None:
        self._released.set()

    async def wait(self, timeout: float = 120.0) -> Load:
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout)
        return self

    async def until(self, n: int, timeout: float = 60.0) -> None:
        """Wait until ``n`` requests have completed (successfully or not)."""

        async def reached() -> bool:
            if self._task is not None and self._task.done():
                self._task.result()
                return self.done >= n
            return self.done >= n

        await poll(reached, timeout, f"{n} completed requests (have {self.done})")

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(self._worker(session) for _ in range(self.concurrency)))

    async def _next(self) -> int | None:
        if self.hold_at is not None and self.started >= self.hold_at:
            await self._released.wait()
        if self._stop.is_set() or (self.total is not None and self.started >= self.total):
            return None
        self.started += 1
        return self.started

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while (i := await self._next()) is not None:
            stream = bool(self.stream_every) and i % self.stream_every == 0
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": "chaos " + "word " * (i % 13)}],
                "max_tokens": 1 + i % 9,
                "stream": stream,
            }
            if stream:
                body["stream_options"] = {"include_usage": True}
            try:
                outcome = await self._one(session, i, body)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.errors.append(f"request {i}: {type(exc).__name__}: {exc}")
                continue
            if isinstance(outcome, str):
                self.errors.append(f"request {i}: {outcome}")
            else:
                self.ok.append(outcome)

    async def _one(
        self, session: aiohttp.ClientSession, i: int, body: dict[str, Any]
    ) -> Outcome | str:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with session.post(
            self.url + "/v1/chat/completions", data=orjson.dumps(body), headers=headers
        ) as r:
            raw = await r.read()
            if r.status != 200:
                return f"HTTP {r.status}: {raw[:300]!r}"
            rid = r.headers.get("x-request-id", "")
            provider = r.headers.get("x-turnout-provider", "")
            fallbacks = int(r.headers.get("x-turnout-fallbacks", "0"))
        if not body["stream"]:
            usage = orjson.loads(raw)["usage"]
        else:
            usage, finished = None, False
            for line in raw.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    finished = True
                    continue
                event = orjson.loads(data)
                if "error" in event:
                    return f"stream error event: {data[:300]!r}"
                if event.get("usage"):
                    usage = event["usage"]
            if not finished or usage is None:
                return f"incomplete stream: {raw[-300:]!r}"
        return Outcome(
            i,
            rid,
            bool(body["stream"]),
            provider,
            fallbacks,
            int(usage["prompt_tokens"]),
            int(usage["completion_tokens"]),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "ok": len(self.ok),
            "errors": len(self.errors),
            "streams": sum(o.stream for o in self.ok),
            "providers": dict(Counter(o.provider for o in self.ok)),
            "fell_back": sum(1 for o in self.ok if o.fallbacks),
            "input_tokens": sum(o.input_tokens for o in self.ok),
            "output_tokens": sum(o.output_tokens for o in self.ok),
        }


async def assert_counted_once(
    system: ChaosSystem, load: Load, *, refused: int = 0
) -> dict[str, Any]:
    """Every successful request of ``load`` is in metering exactly once, with its own tokens,
    and the derived tables (daily rollup, spend) counted each one once too; besides them there
    are exactly ``refused`` usage records of requests the router refused."""
    n = len(load.ok)
    sent = {o.request_id: o for o in load.ok}
    assert len(sent) == n, "the router gave two requests the same x-request-id"
    every = await system.usage_rows()
    assert sum(r["outcome"] != "success" for r in every) == refused, [
        dict(r) for r in every if r["outcome"] != "success"
    ][:5]
    rows = [r for r in every if r["outcome"] == "success"]
    ids = [r["request_id"] for r in rows]
    assert len(ids) == len(set(ids)) == n, f"{len(ids)} rows, {len(set(ids))} ids, {n} requests"
    assert set(ids) == set(sent), "metered request ids differ from the served ones"
    wrong = [
        (r["request_id"], r["input_tokens"], r["output_tokens"])
        for r in rows
        if (r["input_tokens"], r["output_tokens"])
        != (sent[r["request_id"]].input_tokens, sent[r["request_id"]].output_tokens)
    ]
    assert not wrong, f"token counts differ from what the clients got: {wrong[:5]}"
    stats = await system.usage_stats()
    tokens_in = sum(o.input_tokens for o in load.ok)
    tokens_out = sum(o.output_tokens for o in load.ok)
    assert (stats["input_tokens"], stats["output_tokens"]) == (tokens_in, tokens_out)
    daily, spend = stats["daily"], stats["spend"]
    assert daily["requests"] == n and spend["requests"] == n, stats
    assert (daily["input_tokens"], daily["output_tokens"]) == (tokens_in, tokens_out), stats
    assert daily["cost"] == stats["cost"] == spend["spent"], stats
    return stats


async def metric(base_url: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text exposition at ``base_url/metrics`` (0 if absent)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
        s.get(base_url + "/metrics") as r,
    ):
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(name + (f"{{{labels}}}" if labels else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def chaos_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    """A Tansu broker of this test's own (a test may stop and restart it on its port)."""
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def chaos_system(
    tmp_path: Path, pg_server_dsn: str, chaos_broker: TansuBroker
) -> Iterator[ChaosSystem]:
    """A fresh database, the broker, and the four services running; not yet configured."""
    with fresh_database(pg_server_dsn, "turnout_chaos") as dsn:
        asyncio.run(migrate_all(dsn, list(SERVICES)))
        system = ChaosSystem(tmp_path, dsn, chaos_broker)
        try:
            for name in SERVICE_ORDER:
                system.start(name)
            system.wait_ready(SERVICE_ORDER)
            yield system
        finally:
            system.stop_all()


def report(name: str, **numbers: Any) -> None:
    """The measured numbers of a scenario, on stdout (``pytest -s`` shows them)."""
    print(f"\n[chaos] {name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
