"""turnout_common.tracing: the HTTP SERVER span, outbox rows carrying the trace context to
Kafka, and followers' CONSUMER spans (real PostgreSQL and broker, in-memory exporter).

The whole chain across services is tests/tracing/.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from turnout_common.asgi import ApiMiddleware
from turnout_common.broker import Producer, ensure_topics
from turnout_common.db import create_pool
from turnout_common.errors import ServiceUnavailable
from turnout_common.follow import TopicFollower
from turnout_common.migrations import migrate_dsn
from turnout_common.outbox import OutboxRelay, enqueue, enqueue_many
from turnout_common.settings import KafkaSettings
from turnout_common.telemetry import message_trace_headers
from turnout_common.testing.spans import memory_provider, span_context
from turnout_common.topics import Topic
from turnout_common.tracing import ServiceTracing
from turnout_common.web import install_error_handlers, install_http_metrics, install_tracing

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CLIENT_SPAN = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{CLIENT_SPAN:016x}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Iterator[ServiceTracing]:
    provider = memory_provider("svc-under-test", exporter)
    yield ServiceTracing(provider, "tests")
    provider.shutdown()


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _traceparent_of(span: ReadableSpan) -> str:
    ctx = span_context(span)
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _app(tracing: ServiceTracing) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_http_metrics(app, "tracing-test")
    install_tracing(app, tracing)
    app.add_middleware(ApiMiddleware)
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def item(item_id: str) -> dict[str, Any]:
        return {"id": item_id, "headers": message_trace_headers("t.items", 1, item_id)}

    app.include_router(items, prefix="/api")  # its template is relative in scope["route"]

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise ServiceUnavailable("not now")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    return app


@pytest.fixture
async def client(tracing: ServiceTracing) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(tracing), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


async def test_server_span_continues_the_callers_trace(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    r = await client.get(
        "/api/items/42",
        headers={"traceparent": TRACEPARENT, "user-agent": "t/1", "x-request-id": "rid-1"},
    )
    assert r.status_code == 200
    (server,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.name == "GET /api/items/{item_id}"
    assert span_context(server).trace_id == TRACE_ID and _parent_id(server) == CLIENT_SPAN
    assert server.parent is not None and server.parent.is_remote
    attrs = dict(server.attributes or {})
    assert attrs["http.request.method"] == "GET" and attrs["http.route"] == "/api/items/{item_id}"
    assert attrs["url.path"] == "/api/items/42" and attrs["http.response.status_code"] == 200
    assert attrs["user_agent.original"] == "t/1" and attrs["turnout.request_id"] == "rid-1"
    assert server.status.status_code is StatusCode.UNSET
    # a message written while serving gets a PRODUCER span, child of the server span
    (producer,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert (
        producer.name == "create t.items" and _parent_id(producer) == span_context(server).span_id
    )
    assert (producer.attributes or {})["messaging.kafka.message.key"] == "42"
    assert r.json()["headers"] == {"traceparent": _traceparent_of(producer)}


async def test_without_traceparent_the_request_starts_a_trace(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    assert (await client.get("/api/items/1")).status_code == 200
    (server, _producer) = sorted(exporter.get_finished_spans(), key=lambda s: s.kind.value)
    assert server.kind is SpanKind.SERVER and server.parent is None


async def test_5xx_answers_and_exceptions_are_errors(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    assert (await client.get("/unavailable")).status_code == 503
    assert (await client.get("/boom")).status_code == 500
    assert (await client.get("/nowhere")).status_code == 404
    by_path = {(s.attributes or {})["url.path"]: s for s in exporter.get_finished_spans()}
    unavailable, boom, missing = by_path["/unavailable"], by_path["/boom"], by_path["/nowhere"]
    assert unavailable.status.status_code is StatusCode.ERROR
    assert (unavailable.attributes or {})["error.type"] == "503"
    assert boom.name == "GET /boom" and boom.status.status_code is StatusCode.ERROR
    assert (boom.attributes or {})["error.type"] == "RuntimeError"
    assert (boom.attributes or {})["http.response.status_code"] == 500
    assert [e.name for e in boom.events] == ["exception"]
    assert missing.name == "GET" and "http.route" not in (missing.attributes or {})
    assert missing.status.status_code is StatusCode.UNSET  # a 4xx is the caller's problem


async def test_ops_endpoints_are_not_traced(
    exporter: InMemorySpanExporter, tracing: ServiceTracing
) -> None:
    from turnout_common.web import ops_router

    app = _app(tracing)
    app.include_router(ops_router({}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await c.get(path, headers={"traceparent": TRACEPARENT})).status_code == 200
    assert exporter.get_finished_spans() == ()


def test_nothing_is_carried_outside_a_traced_span(tracing: ServiceTracing) -> None:
    assert message_trace_headers("t") is None  # no tracing service in this context
    with tracing.active(tracing.tracer.start_span("work")):
        assert (message_trace_headers("t") or {}).keys() == {"traceparent"}
    assert message_trace_headers("t") is None


async def _read(settings: KafkaSettings, topic: str, n: int) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[Any] = []
        async with asyncio.timeout(15):
            while len(records) < n:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_outbox_rows_carry_the_context_to_kafka(
    database_url: str,
    kafka_settings: KafkaSettings,
    unique_topic: str,
    tracing: ServiceTracing,
    exporter: InMemorySpanExporter,
) -> None:
    schema = f"obt_{uuid.uuid4().hex[:8]}"
    await migrate_dsn(database_url, schema, [], outbox=True)
    await ensure_topics(kafka_settings, [Topic(unique_topic, 1, False, "test")])
    pool = await create_pool(database_url, schema=schema)
    producer = Producer(kafka_settings)
    await producer.start()
    try:
        async with pool.acquire() as conn:
            await enqueue(conn, schema, unique_topic, "untraced", b"0")
            with tracing.active(tracing.tracer.start_span("change")):
                async with conn.transaction():
                    await enqueue(conn, schema, unique_topic, "one", b"1", {"x-app": "a"})
                    await enqueue_many(conn, schema, unique_topic, [("two", b"2"), ("three", b"3")])
        assert await OutboxRelay(pool, schema, producer.send_outbox).drain() == 4
        records = await _read(kafka_settings, unique_topic, 4)
    finally:
        await producer.stop()
        await pool.close()
    headers = {r.key.decode(): dict(r.headers) for r in records}
    assert headers["untraced"] == {}
    change = next(s for s in exporter.get_finished_spans() if s.name == "change")
    creates = sorted(
        (s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER),
        key=lambda s: s.start_time or 0,
    )
    assert [s.name for s in creates] == [f"create {unique_topic}"] * 2
    assert all(_parent_id(s) == span_context(change).span_id for s in creates)
    one, many = creates
    assert (many.attributes or {})["messaging.batch.message_count"] == 2
    assert headers["one"] == {"x-app": b"a", "traceparent": _traceparent_of(one).encode()}
    for key in ("two", "three"):
        assert headers[key] == {"traceparent": _traceparent_of(many).encode()}


async def test_follower_processes_traced_records_in_consumer_spans(
    kafka_settings: KafkaSettings,
    unique_topic: str,
    tracing: ServiceTracing,
    exporter: InMemorySpanExporter,
) -> None:
    await ensure_topics(kafka_settings, [Topic(unique_topic, 1, False, "test")])
    seen: list[bytes | None] = []
    current: list[int] = []

    def handle(key: bytes | None, value: bytes | None) -> None:
        from opentelemetry.trace import get_current_span

        seen.append(value)
        current.append(get_current_span().get_span_context().span_id)
        if value == b"bad":
            raise ValueError("cannot apply")

    follower = TopicFollower(kafka_settings, unique_topic, handle, name="t", tracing=tracing)
    await follower.start()
    follower.start_background()
    producer = Producer(kafka_settings)
    await producer.start()
    try:
        with tracing.active(tracing.tracer.start_span("origin")):
            context = message_trace_headers(unique_topic) or {}
        tp = [(k, v.encode()) for k, v in context.items()]
        await producer.send(unique_topic, b"good", key=b"k1", headers=tp)
        await producer.send(unique_topic, b"plain", key=b"k2")
        await producer.send(unique_topic, b"bad", key=b"k3", headers=tp)
        await producer.send(unique_topic, None, key=b"k4", headers=tp)
        async with asyncio.timeout(15):
            while len(seen) < 4:
                await asyncio.sleep(0.02)
    finally:
        await producer.stop()
        await follower.stop()
    create = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER)
    consumers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    keys = [(s.attributes or {})["messaging.kafka.message.key"] for s in consumers]
    assert keys == ["k1", "k3", "k4"]  # the record without a context got no span
    for span in consumers:
        assert span.name == f"process {unique_topic}"
        assert span_context(span).trace_id == span_context(create).trace_id
        assert _parent_id(span) == span_context(create).span_id
        assert (span.attributes or {})["turnout.follower"] == "t"
    good, bad, tombstone = consumers
    assert good.status.status_code is StatusCode.UNSET
    assert bad.status.status_code is StatusCode.ERROR and bad.events[0].name == "exception"
    assert (tombstone.attributes or {})["messaging.kafka.message.tombstone"] is True
    # the handler ran inside its record's span (none for the untraced one)
    assert current == [
        span_context(good).span_id,
        0,
        span_context(bad).span_id,
        span_context(tombstone).span_id,
    ]


async def test_a_restarted_follower_does_not_trace_history_again(
    kafka_settings: KafkaSettings,
    unique_topic: str,
    tracing: ServiceTracing,
    exporter: InMemorySpanExporter,
) -> None:
    await ensure_topics(kafka_settings, [Topic(unique_topic, 1, False, "test")])
    with tracing.active(tracing.tracer.start_span("origin")):
        context = message_trace_headers(unique_topic) or {}
    tp = [(k, v.encode()) for k, v in context.items()]
    producer = Producer(kafka_settings)
    await producer.start()
    seen: list[bytes | None] = []
    # a follower that starts after these records were written, as after a restart
    follower = TopicFollower(
        kafka_settings, unique_topic, lambda k, v: seen.append(v), name="t", tracing=tracing
    )
    try:
        await producer.send(unique_topic, b"old-1", key=b"k1", headers=tp)
        await producer.send(unique_topic, b"old-2", key=b"k2", headers=tp)
        await follower.start()
        follower.start_background()
        await producer.send(unique_topic, b"new", key=b"k3", headers=tp)
        async with asyncio.timeout(15):
            while len(seen) < 3:
                await asyncio.sleep(0.02)
    finally:
        await producer.stop()
        await follower.stop()
    assert seen == [b"old-1", b"old-2", b"new"]  # history is still applied
    consumers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert [(s.attributes or {})["messaging.kafka.message.key"] for s in consumers] == ["k3"]
