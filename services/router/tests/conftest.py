"""Router test fixtures: a real broker, real local upstreams, a local config snapshot server,
and the router itself served in-process by Granian's embedded RSGI server (real HTTP)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from turnout_common.broker import Producer, ensure_topics
from turnout_common.crypto import KeyRing, generate_key, hash_virtual_key
from turnout_common.devinfra import free_port
from turnout_common.events import ConfigEvent
from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI, UpstreamBehaviour, start_fake_openai
from turnout_common.topics import ALL_TOPICS, CONFIG, USAGE
from turnout_router.app import RouterApp
from turnout_router.record import UsageRecord
from turnout_router.settings import RouterSettings

ADMIN = "admin-test-token"
ENC_KEY = generate_key()
ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
UPSTREAM_KEY_1 = "sk-upstream-one-1234567890"
UPSTREAM_KEY_2 = "sk-upstream-two-1234567890"
_rev = itertools.count(int(time.time() * 1000))


class ConfigWorld:
    """The config the router sees: a snapshot server plus ConfigEvents on the real topic."""

    def __init__(self, producer: Producer) -> None:
        self.enc_key = ENC_KEY
        self.ring = KeyRing([ENC_KEY])
        self.entities: dict[tuple[str, str], dict[str, Any]] = {}
        self.producer = producer

    def snapshot_app(self) -> web.Application:
        async def snapshot(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Bearer {ADMIN}":
                return web.json_response({"error": "no"}, status=401)
            return web.json_response(
                {
                    "revision": max((e["revision"] for e in self.entities.values()), default=0),
                    "entities": list(self.entities.values()),
                }
            )

        app = web.Application()
        app.router.add_get("/api/v1/snapshot", snapshot)
        return app

    def seed(self, entity: str, eid: str, data: dict[str, Any]) -> None:
        self.entities[(entity, eid)] = {
            "revision": next(_rev),
            "entity": entity,
            "entity_id": eid,
            "op": "upsert",
            "data": data,
        }

    async def put(self, entity: str, eid: str, data: dict[str, Any]) -> None:
        ev = ConfigEvent(revision=next(_rev), entity=entity, entity_id=eid, op="upsert", data=data)  # type: ignore[arg-type]
        self.entities[(entity, eid)] = orjson.loads(
            ev.model_dump_json(include={"revision", "entity", "entity_id", "op", "data"})
        )
        await self.producer.send(CONFIG.name, ev.to_bytes(), key=ev.key.encode())

    async def delete(self, entity: str, eid: str) -> None:
        ev = ConfigEvent(revision=next(_rev), entity=entity, entity_id=eid, op="delete")  # type: ignore[arg-type]
        self.entities.pop((entity, eid), None)
        await self.producer.send(CONFIG.name, ev.to_bytes(), key=ev.key.encode())

    def provider(
        self, pid: str, url: str, key: str | None = UPSTREAM_KEY_1, **kw: Any
    ) -> dict[str, Any]:
        return {
            "id": pid,
            "name": pid,
            "kind": kw.pop("kind", "openai_compatible"),
            "base_url": url,
            "enabled": True,
            "api_key_encrypted": self.ring.encrypt(key) if key else None,
            "api_key_hint": "sk-…",
            "rpm_limit": None,
            "tpm_limit": None,
            "priority": 0,
            "weight": 1,
            "min_tier": None,
            "is_system": False,
            "timeout_s": None,
            "metadata": {},
            **kw,
        }

    @staticmethod
    def model(mid: str, name: str, provider_id: str, **kw: Any) -> dict[str, Any]:
        return {
            "id": mid,
            "name": name,
            "provider_id": provider_id,
            "upstream_model": kw.pop("upstream_model", f"up-{name}"),
            "purposes": kw.pop("purposes", ["chat", "completion"]),
            "context_window": 8192,
            "max_output_tokens": None,
            "capabilities": {"streaming": True, "tools": True, "vision": False, "json_mode": True},
            "input_price_per_mtok": "0.10",
            "output_price_per_mtok": "0.20",
            "cached_price_per_mtok": None,
            "power_level": None,
            "min_tier": None,
            "enabled": True,
            "deprecated": False,
            "priority": 0,
            "weight": 1,
            "fallbacks": [],
            "aliases": [],
            **kw,
        }

    @staticmethod
    def key(kid: str, user_id: str, secret: str, **kw: Any) -> dict[str, Any]:
        return {
            "id": kid,
            "user_id": user_id,
            "name": kid,
            "key_hash": hash_virtual_key(secret),
            "key_hint": "tk-…",
            "allowed_models": None,
            "rpm_limit": None,
            "tpm_limit": None,
            "budget_usd": None,
            "expires_at": None,
            "revoked": False,
            **kw,
        }


class UsageLog:
    """Every record on ``turnout.usage.v1`` since the session started, by request id."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.records: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        c = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            group_id=None,
            fetch_max_wait_ms=20,
            auto_offset_reset="earliest",
        )
        await c.start()
        parts = [TopicPartition(USAGE.name, p) for p in range(USAGE.partitions)]
        c.assign(parts)
        await c.seek_to_beginning(*parts)
        self._consumer = c

        async def run() -> None:
            while True:
                for recs in (await c.getmany(timeout_ms=200)).values():
                    for r in recs:
                        rec = orjson.loads(r.value)
                        self.records[rec["request_id"]] = rec

        self._task = asyncio.create_task(run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self._consumer.stop()

    async def wait(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while request_id not in self.records:
            if time.monotonic() > deadline:
                raise AssertionError(f"no usage record for {request_id}")
            await asyncio.sleep(0.02)
        return self.records[request_id]


def usage_record(rid: str, **extra: Any) -> UsageRecord:
    """A successful chat usage record as the gateway hands it to the emitter (priced)."""
    return UsageRecord(
        request_id=rid,
        purpose="chat",
        started_at=time.time(),
        user_id="alice",
        key_id="k",
        input_tokens=10,
        output_tokens=5,
        **extra,
    )


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, tuple[FakeOpenAI, LocalServer]]]:
    servers = {n: start_fake_openai(n) for n in ("one", "two", "three")}
    yield servers
    for _, srv in servers.values():
        srv.stop()


@pytest.fixture(autouse=True)
def _reset_fakes(fakes: dict[str, tuple[FakeOpenAI, LocalServer]]) -> Iterator[None]:
    yield
    for fake, _ in fakes.values():
        fake.behaviour = UpstreamBehaviour()
        fake.requests.clear()


def rerank_app() -> web.Application:
    async def rerank(request: web.Request) -> web.Response:
        body = await request.json()
        docs = body["documents"]
        results = [{"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(len(docs))]
        return web.json_response(
            {
                "id": "rr-1",
                "model": body["model"],
                "results": results,
                "usage": {"total_tokens": 7 * len(docs)},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/rerank", rerank)
    return app


@pytest.fixture(scope="session")
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[Producer]:
    await ensure_topics(kafka_settings, ALL_TOPICS)
    p = Producer(kafka_settings)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture(scope="session")
async def world(
    producer: Producer, fakes: dict[str, tuple[FakeOpenAI, LocalServer]]
) -> AsyncIterator[ConfigWorld]:
    w = ConfigWorld(producer)
    one, two = fakes["one"][1].url + "/v1", fakes["two"][1].url + "/v1"
    rr = LocalServer(rerank_app).start()
    for name, rank in (("free", 0), ("starter", 1), ("professional", 2), ("enterprise", 3)):
        w.seed(
            "tier",
            name,
            {
                "name": name,
                "rank": rank,
                "monthly_credits_usd": "0",
                "rpm_limit": None,
                "tpm_limit": None,
            },
        )
    w.seed(
        "user",
        "alice",
        {"id": "alice", "tier": "professional", "monthly_budget_usd": None, "enabled": True},
    )
    w.seed("virtual_key", "k-alice", w.key("k-alice", "alice", ALICE_KEY))
    w.seed("provider", "p1", w.provider("p1", one, UPSTREAM_KEY_1))
    w.seed("provider", "p2", w.provider("p2", two, UPSTREAM_KEY_2))
    w.seed("provider", "prr", w.provider("prr", rr.url + "/v1", None, kind="vllm"))
    w.seed("model", "m1", w.model("m1", "primary", "p1", fallbacks=["backup"]))
    w.seed(
        "model",
        "m2",
        w.model("m2", "backup", "p2", input_price_per_mtok="1.00", output_price_per_mtok="2.00"),
    )
    w.seed("model", "m-emb", w.model("m-emb", "emb", "p1", purposes=["embeddings"]))
    w.seed("model", "m-rr", w.model("m-rr", "rr", "prr", purposes=["reranking"]))
    w.seed("route", "chat", {"purpose": "chat", "model": "primary", "fallbacks": ["backup"]})
    yield w
    rr.stop()


@pytest.fixture(scope="session")
def config_server(world: ConfigWorld) -> Iterator[LocalServer]:
    with LocalServer(world.snapshot_app) as srv:
        yield srv


def router_settings(
    kafka: KafkaSettings, config_url: str, state_dir: Path, **kw: Any
) -> RouterSettings:
    return RouterSettings.model_validate(
        {
            "kafka": kafka,
            "config_url": config_url,
            "admin_token": ADMIN,
            "encryption_keys": ENC_KEY,
            "state_dir": state_dir,
            "ttft_timeout_s": 1.0,
            "retry_backoff_s": 0.01,
            "usage_flush_interval_ms": 5,
            "usage_send_timeout_s": 1.0,
            "usage_replay_interval_s": 0.2,
            **kw,
        }
    )


class RunningRouter:
    def __init__(self, app: RouterApp, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> RunningRouter:
        from granian.constants import Interfaces
        from granian.server.embed import Server

        self._server = Server(
            self.app,
            address="127.0.0.1",
            port=self.port,
            interface=Interfaces.RSGI,
            websockets=False,
            log_enabled=False,
        )
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 15
        while not self.app.ready:
            if time.monotonic() > deadline:
                raise AssertionError("router did not become ready")
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        self._server.stop()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)
        await self.app.shutdown()


@pytest.fixture(scope="session")
async def router(
    kafka_settings: KafkaSettings,
    config_server: LocalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningRouter]:
    settings = router_settings(kafka_settings, config_server.url, tmp_path_factory.mktemp("router"))
    r = await RunningRouter(RouterApp(settings), free_port()).start()
    yield r
    await r.stop()


@pytest.fixture(scope="session")
async def usage_log(kafka_settings: KafkaSettings, producer: Producer) -> AsyncIterator[UsageLog]:
    log = UsageLog(kafka_settings)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture
def unique() -> str:
    return f"t{next(_rev) % 10_000_000}"
