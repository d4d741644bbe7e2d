"""One trace from the client's HTTP request through the router, its upstream calls and the
usage record on Kafka to metering's insert.

The router (Granian, real HTTP) and metering's runtime run in this process against the real
PostgreSQL and broker and local fake upstreams; each has its own tracer provider (its own
``service.name``) exporting to one in-memory exporter.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from turnout_common.crypto import KeyRing, generate_key, hash_virtual_key
from turnout_common.devinfra import free_port
from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.spans import (
    attribute,
    memory_provider,
    new_traceparent,
    service_of,
    span_context,
)
from turnout_common.testing.upstream import FakeOpenAI, UpstreamBehaviour, start_fake_openai
from turnout_metering.runtime import Runtime
from turnout_metering.settings import MeteringSettings
from turnout_router.app import RouterApp
from turnout_router.settings import RouterSettings

ADMIN = "admin-trace-test-token"
ENC_KEY = generate_key()
KEY = "tk-trace-test-key-0000000000000000000000"
TAG = uuid.uuid4().hex[:8]
PRIMARY, BACKUP = f"trace-primary-{TAG}", f"trace-backup-{TAG}"


def _entities(primary_url: str, backup_url: str) -> list[dict[str, Any]]:
    ring = KeyRing([ENC_KEY])
    rev = int(time.time() * 1000)

    def provider(pid: str, url: str) -> dict[str, Any]:
        return {
            "id": pid,
            "name": pid,
            "kind": "vllm",
            "base_url": url + "/v1",
            "enabled": True,
            "api_key_encrypted": ring.encrypt("sk-upstream-trace-123456"),
            "api_key_hint": "sk-…3456",
            "rpm_limit": None,
            "tpm_limit": None,
            "priority": 0,
            "weight": 1,
            "min_tier": None,
            "is_system": False,
            "timeout_s": None,
            "metadata": {},
        }

    def model(mid: str, name: str, pid: str, fallbacks: list[str]) -> dict[str, Any]:
        return {
            "id": mid,
            "name": name,
            "provider_id": pid,
            "upstream_model": f"up-{name}",
            "purposes": ["chat"],
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
            "fallbacks": fallbacks,
            "aliases": [],
        }

    data = [
        (
            "tier",
            "professional",
            {"name": "professional", "rank": 2, "monthly_credits_usd": "0"}
            | {"rpm_limit": None, "tpm_limit": None},
        ),
        (
            "user",
            f"u-{TAG}",
            {"id": f"u-{TAG}", "tier": "professional", "monthly_budget_usd": None, "enabled": True},
        ),
        (
            "virtual_key",
            f"k-{TAG}",
            {
                "id": f"k-{TAG}",
                "user_id": f"u-{TAG}",
                "name": "trace",
                "key_hash": hash_virtual_key(KEY),
                "key_hint": "tk-…",
                "allowed_models": None,
                "rpm_limit": None,
                "tpm_limit": None,
                "budget_usd": None,
                "expires_at": None,
                "revoked": False,
            },
        ),
        ("provider", f"p1-{TAG}", provider(f"p1-{TAG}", primary_url)),
        ("provider", f"p2-{TAG}", provider(f"p2-{TAG}", backup_url)),
        ("model", f"m1-{TAG}", model(f"m1-{TAG}", PRIMARY, f"p1-{TAG}", [BACKUP])),
        ("model", f"m2-{TAG}", model(f"m2-{TAG}", BACKUP, f"p2-{TAG}", [])),
    ]
    return [
        {"revision": rev + i, "entity": e, "entity_id": eid, "op": "upsert", "data": d}
        for i, (e, eid, d) in enumerate(data)
    ]


def _snapshot_app(entities: list[dict[str, Any]]) -> Callable[[], web.Application]:
    def make() -> web.Application:
        async def snapshot(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Bearer {ADMIN}":
                return web.json_response({"error": "unauthorized"}, status=401)
            revision = max(e["revision"] for e in entities)
            return web.json_response({"revision": revision, "entities": entities})

        app = web.Application()
        app.router.add_get("/api/v1/snapshot", snapshot)
        return app

    return make


@dataclass
class World:
    router_url: str
    exporter: InMemorySpanExporter
    primary: FakeOpenAI
    backup: FakeOpenAI
    metering: Runtime

    def spans(self, trace_id: int) -> list[ReadableSpan]:
        return [
            s for s in self.exporter.get_finished_spans() if span_context(s).trace_id == trace_id
        ]

    async def consumer_span(self, request_id: str, timeout: float = 30.0) -> ReadableSpan:
        """Metering's span for ``request_id`` (its batch is committed by then)."""
        deadline = time.monotonic() + timeout
        while True:
            for s in self.exporter.get_finished_spans():
                if s.kind is SpanKind.CONSUMER and attribute(s, "turnout.request_id") == request_id:
                    return s
            assert time.monotonic() < deadline, f"metering never processed {request_id}"
            await asyncio.sleep(0.05)


def _one(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.kind is kind]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAI, LocalServer, FakeOpenAI, LocalServer]]:
    primary, primary_srv = start_fake_openai("trace-primary")
    backup, backup_srv = start_fake_openai("trace-backup")
    yield primary, primary_srv, backup, backup_srv
    primary_srv.stop()
    backup_srv.stop()


@pytest.fixture(scope="module")
async def world(
    database_url: str,
    kafka_settings: KafkaSettings,
    tmp_path_factory: pytest.TempPathFactory,
    fakes: tuple[FakeOpenAI, LocalServer, FakeOpenAI, LocalServer],
) -> AsyncIterator[World]:
    primary, primary_srv, backup, backup_srv = fakes
    exporter = InMemorySpanExporter()
    router_tp = memory_provider("turnout-router", exporter)
    metering_tp = memory_provider("turnout-metering", exporter)
    usage_topic = f"turnout.test.usage.trace.{TAG}"
    with LocalServer(_snapshot_app(_entities(primary_srv.url, backup_srv.url))) as snapshot:
        metering = Runtime(
            MeteringSettings(
                database_url=database_url,
                admin_token=ADMIN,
                config_url=snapshot.url,
                metering_schema=f"metering_trace_{TAG}",
                metering_group=f"turnout-metering-trace-{TAG}",
                metering_poll_timeout_ms=100,
                db_pool_min=1,
                db_pool_max=4,
                usage_topic=usage_topic,
                credit_topic=f"turnout.test.credit.trace.{TAG}",
                billing_topic=f"turnout.test.billing.trace.{TAG}",
                kafka=kafka_settings,
            ),
            tracer_provider=metering_tp,
        )
        await metering.start(consume=True)
        settings = RouterSettings.model_validate(
            {
                "kafka": kafka_settings,
                "config_url": snapshot.url,
                "admin_token": ADMIN,
                "encryption_keys": ENC_KEY,
                "state_dir": Path(tmp_path_factory.mktemp("router-trace")),
                "ttft_timeout_s": 2.0,
                "retry_backoff_s": 0.01,
                "usage_flush_interval_ms": 5,
                "usage_send_timeout_s": 2.0,
                "usage_topic": usage_topic,
            }
        )
        router = RouterApp(settings, tracer_provider=router_tp)
        server, task = await _serve(router, port := free_port())
        try:
            yield World(f"http://127.0.0.1:{port}", exporter, primary, backup, metering)
        finally:
            server.stop()
            await asyncio.wait_for(task, 10)
            await router.shutdown()
            await metering.stop()
            router_tp.shutdown()
            metering_tp.shutdown()


async def _serve(app: RouterApp, port: int) -> tuple[Any, asyncio.Task[None]]:
    """The router on Granian's embedded RSGI server (as services/router/tests do)."""
    from granian.constants import Interfaces
    from granian.server.embed import Server

    server = Server(
        app,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.RSGI,
        websockets=False,
        log_enabled=False,
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 15
    while not app.ready:
        assert time.monotonic() < deadline, "router did not become ready"
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


async def _record_headers(settings: MeteringSettings, request_id: str) -> dict[str, str]:
    """The Kafka headers of ``request_id``'s usage record (read from the topic's start)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, group_id=None, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(settings.usage_topic) or set()
        if not parts:
            await consumer.force_metadata_update()
            parts = consumer.partitions_for_topic(settings.usage_topic) or set()
        tps = [TopicPartition(settings.usage_topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for rec in records:
                    if rec.key == request_id.encode():
                        return {k: v.decode() for k, v in rec.headers}
    finally:
        await consumer.stop()
    raise AssertionError(f"no usage record for {request_id} on {settings.usage_topic}")


@pytest.fixture(autouse=True)
def _reset(fakes: tuple[FakeOpenAI, LocalServer, FakeOpenAI, LocalServer]) -> Iterator[None]:
    yield
    for fake in (fakes[0], fakes[2]):
        fake.behaviour = UpstreamBehaviour()
        fake.requests.clear()


def _headers(traceparent: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {KEY}", "User-Agent": "trace-test/1.0"}
    if traceparent:
        h["traceparent"] = traceparent
    return h


async def test_one_trace_from_client_through_router_kafka_and_metering(world: World) -> None:
    world.primary.behaviour = UpstreamBehaviour(status=500)  # served by the fallback
    trace_id, client_span_id, traceparent = new_traceparent()
    body = {"model": PRIMARY, "messages": [{"role": "user", "content": "hello there"}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            world.router_url + "/v1/chat/completions", json=body, headers=_headers(traceparent)
        ) as resp,
    ):
        answer = await resp.json()
        assert resp.status == 200, answer
        request_id = resp.headers["x-request-id"]
        assert resp.headers["x-turnout-fallbacks"] == "1"

    consumer = await world.consumer_span(request_id)
    spans = world.spans(trace_id)

    # the router's SERVER span continues the client's trace
    server = _one(spans, SpanKind.SERVER)
    assert server.parent is not None and server.parent.span_id == client_span_id
    assert server.parent.is_remote
    assert service_of(server) == "turnout-router"
    assert server.name == "POST /v1/chat/completions"
    attrs = dict(server.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == PRIMARY
    assert attrs["gen_ai.response.model"] == BACKUP == answer["model"]
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "vllm"
    assert attrs["gen_ai.usage.input_tokens"] == answer["usage"]["prompt_tokens"] == 5
    assert attrs["gen_ai.usage.output_tokens"] == answer["usage"]["completion_tokens"] == 9
    assert attrs["http.response.status_code"] == 200
    assert attrs["turnout.request_id"] == request_id
    assert attrs["turnout.fallbacks"] == 1 and attrs["turnout.attempts"] == 2
    assert attrs["turnout.deployment.id"] == f"m2-{TAG}"
    assert attrs["turnout.provider.id"] == f"p2-{TAG}"
    assert attrs["turnout.upstream_model"] == f"up-{BACKUP}"
    assert attrs["turnout.outcome"] == "success" and attrs["turnout.stream"] is False
    assert attrs["user_agent.original"] == "trace-test/1.0"
    assert server.status.status_code is StatusCode.UNSET

    # one CLIENT span per upstream attempt, children of the server span
    clients = sorted(
        (s for s in spans if s.kind is SpanKind.CLIENT and service_of(s) == "turnout-router"),
        key=lambda s: attribute(s, "turnout.attempt"),
    )
    assert [attribute(c, "turnout.deployment.id") for c in clients] == [f"m1-{TAG}", f"m2-{TAG}"]
    for c in clients:
        assert c.parent is not None and c.parent.span_id == span_context(server).span_id
        assert attribute(c, "gen_ai.operation.name") == "chat"
        assert attribute(c, "server.address") == "127.0.0.1"
    failed, served = clients
    assert failed.name == f"chat up-{PRIMARY}"
    assert failed.status.status_code is StatusCode.ERROR and attribute(failed, "error.type")
    assert attribute(served, "gen_ai.request.model") == f"up-{BACKUP}"
    assert attribute(served, "gen_ai.usage.input_tokens") == 5
    assert attribute(served, "gen_ai.usage.output_tokens") == 9
    assert served.status.status_code is StatusCode.UNSET
    # ... and each upstream received its attempt's context (W3C traceparent)
    for fake, span in ((world.primary, failed), (world.backup, served)):
        sent = fake.requests[-1]["headers"]["traceparent"]
        assert sent == f"00-{trace_id:032x}-{span_context(span).span_id:016x}-01"

    # the usage record's PRODUCER span, whose context travelled in the Kafka headers
    producer = _one(spans, SpanKind.PRODUCER)
    assert producer.parent is not None and producer.parent.span_id == span_context(server).span_id
    assert attribute(producer, "messaging.destination.name") == world.metering.settings.usage_topic
    assert attribute(producer, "messaging.kafka.message.key") == request_id

    # the record on the topic: its Kafka headers carry the producer span's context
    headers = await _record_headers(world.metering.settings, request_id)
    assert headers["traceparent"] == f"00-{trace_id:032x}-{span_context(producer).span_id:016x}-01"

    # metering processed the record in the same trace, as the producer span's child
    assert span_context(consumer).trace_id == trace_id
    assert consumer.parent is not None and consumer.parent.span_id == span_context(producer).span_id
    assert service_of(consumer) == "turnout-metering"
    assert consumer.name == f"process {world.metering.settings.usage_topic}"
    assert attribute(consumer, "turnout.metering.inserted") is True
    group = world.metering.settings.metering_group
    assert attribute(consumer, "messaging.consumer.group.name") == group
    # ... inside the batch's INSERT span, which links back to the record's context
    (link,) = consumer.links
    insert = next(
        s
        for s in world.exporter.get_finished_spans()
        if span_context(s).span_id == link.context.span_id
    )
    assert insert.name == "INSERT usage_log" and attribute(insert, "db.system.name") == "postgresql"
    assert any(lk.context.span_id == span_context(producer).span_id for lk in insert.links)
    async with world.metering.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT model, fallbacks FROM usage_log WHERE request_id = $1", request_id
        )
    assert row is not None and (row["model"], row["fallbacks"]) == (BACKUP, 1)


async def test_stream_without_client_context_starts_a_trace_metering_joins(world: World) -> None:
    body = {
        "model": PRIMARY,
        "stream": True,
        "messages": [{"role": "user", "content": "stream to me"}],
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(world.router_url + "/v1/chat/completions", json=body, headers=_headers()) as r,
    ):
        assert r.status == 200
        events = [line for line in (await r.read()).split(b"\n\n") if line.strip()]
        request_id = r.headers["x-request-id"]
    assert events[-1] == b"data: [DONE]"
    consumer = await world.consumer_span(request_id)
    spans = world.spans(span_context(consumer).trace_id)
    server = _one(spans, SpanKind.SERVER)
    assert server.parent is None  # the client sent no traceparent: the router starts the trace
    assert (
        attribute(server, "turnout.stream") is True and attribute(server, "turnout.fallbacks") == 0
    )
    assert attribute(server, "turnout.ttft_ms") is not None
    client = _one(spans, SpanKind.CLIENT)
    # the served attempt's span covers the whole stream and carries its usage
    assert attribute(client, "gen_ai.usage.output_tokens") == 9
    assert attribute(server, "gen_ai.usage.output_tokens") == 9
    assert client.end_time is not None and server.end_time is not None
    assert client.end_time <= server.end_time
    producer = _one(spans, SpanKind.PRODUCER)
    assert consumer.parent is not None and consumer.parent.span_id == span_context(producer).span_id


async def test_concurrent_requests_keep_their_own_traces(world: World) -> None:
    world.backup.behaviour = UpstreamBehaviour(delay_s=0.05)  # overlap on the router
    parents = [new_traceparent() for _ in range(6)]
    body = {"model": BACKUP, "messages": [{"role": "user", "content": "hi"}]}

    async def one(http: aiohttp.ClientSession, traceparent: str) -> str:
        async with http.post(
            world.router_url + "/v1/chat/completions", json=body, headers=_headers(traceparent)
        ) as resp:
            assert resp.status == 200, await resp.text()
            return resp.headers["x-request-id"]

    async with aiohttp.ClientSession() as http:
        ids = await asyncio.gather(*(one(http, tp) for _, _, tp in parents))
    for (trace_id, client_span_id, _), request_id in zip(parents, ids, strict=True):
        consumer = await world.consumer_span(request_id)
        assert span_context(consumer).trace_id == trace_id
        spans = [s for s in world.spans(trace_id) if service_of(s) == "turnout-router"]
        server = _one(spans, SpanKind.SERVER)
        assert server.parent is not None and server.parent.span_id == client_span_id
        assert attribute(server, "turnout.request_id") == request_id
        assert {s.kind for s in spans} == {SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER}
        assert len(spans) == 3
    # each upstream call carried its own request's trace id
    sent = {r["headers"]["traceparent"].split("-")[1] for r in world.backup.requests}
    assert sent == {f"{t:032x}" for t, _, _ in parents}
