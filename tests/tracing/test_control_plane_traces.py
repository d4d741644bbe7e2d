"""Traces across the control plane's HTTP and Kafka hops.

config-api (uvicorn, real HTTP), the router's followers, the health worker and metering run
in this process against the real PostgreSQL and broker, each with a tracer provider of its
own (its own ``service.name``) exporting to one in-memory exporter:

* an admin request to config-api → its SERVER span → the config event's ``create`` span,
  whose context the ``turnout.config.v1`` message carries → the router's (and the health
  worker's and metering's) ``process turnout.config.v1`` spans;
* a health probe's CLIENT span → the health event's ``create`` span and message →
  the router's and config-api's ``process turnout.health.v1`` spans;
* a credit grant to metering → its SERVER span → the credit event → the router's
  ``process turnout.credit.v1`` span.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from turnout_common.crypto import generate_key
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
from turnout_common.testing.upstream import FakeOpenAI, start_fake_openai
from turnout_common.topics import CONFIG, CREDIT, HEALTH
from turnout_config_api.app import create_app as create_config_api
from turnout_config_api.settings import ConfigApiSettings
from turnout_health.app import create_app as create_health_worker
from turnout_health.testing import ADMIN, make_settings, running
from turnout_metering.app import create_app as create_metering
from turnout_metering.runtime import Runtime
from turnout_metering.settings import MeteringSettings
from turnout_router.app import RouterApp
from turnout_router.settings import RouterSettings

TAG = uuid.uuid4().hex[:8]
ENC_KEY = generate_key()
AUTH = {"Authorization": f"Bearer {ADMIN}"}
CONFIG_API, ROUTER, HEALTH_WORKER, METERING = (
    "turnout-config-api",
    "turnout-router",
    "turnout-health-worker",
    "turnout-metering",
)


class _Uvicorn(uvicorn.Server):
    """uvicorn inside the test's loop, leaving pytest's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class World:
    config_url: str
    exporter: InMemorySpanExporter
    kafka: KafkaSettings
    router: RouterApp
    metering: httpx.AsyncClient
    metering_runtime: Runtime
    upstream: FakeOpenAI
    upstream_url: str

    async def span(self, what: str, match: Callable[[ReadableSpan], bool]) -> ReadableSpan:
        """The first finished span ``match`` accepts, waiting for it."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for s in self.exporter.get_finished_spans():
                if match(s):
                    return s
            await asyncio.sleep(0.05)
        seen = sorted(
            {(service_of(s), s.kind.name, s.name) for s in self.exporter.get_finished_spans()}
        )
        raise AssertionError(f"no span: {what}; finished: {seen}")


def _ids(traceparent: str) -> tuple[int, int]:
    _, trace_id, span_id, _ = traceparent.split("-")
    return int(trace_id, 16), int(span_id, 16)


def _is(service: str, kind: SpanKind, name: str, trace_id: int) -> Callable[[ReadableSpan], bool]:
    def match(s: ReadableSpan) -> bool:
        return (
            service_of(s) == service
            and s.kind is kind
            and s.name == name
            and span_context(s).trace_id == trace_id
        )

    return match


async def _traced_message(kafka: KafkaSettings, topic: str, key: str, trace_id: int) -> str:
    """The ``traceparent`` of the message with ``key`` on ``topic`` that is in ``trace_id``'s
    trace (the topic is read from the start; a key may have older, untraced messages)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()  # fresh metadata
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(15):
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for rec in records:
                        headers = {k: v.decode() for k, v in rec.headers}
                        traceparent = headers.get("traceparent", "")
                        if rec.key == key.encode() and traceparent.startswith(
                            f"00-{trace_id:032x}-"
                        ):
                            return traceparent
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, LocalServer]]:
    fake, server = start_fake_openai("trace-probe")
    yield fake, server
    server.stop()


@contextlib.asynccontextmanager
async def _serve_config_api(
    database_url: str, kafka: KafkaSettings, provider: TracerProvider
) -> AsyncIterator[str]:
    settings = ConfigApiSettings.model_validate(
        {
            "database_url": database_url,
            "encryption_keys": ENC_KEY,
            "admin_token": ADMIN,
            "kafka": kafka,
            "outbox_poll_interval_s": 0.2,
            "db_pool_max": 4,
        }
    )
    app = create_config_api(settings, tracer_provider=provider)
    port = free_port()
    server = _Uvicorn(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("config-api stopped while starting")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture(scope="module")
async def world(
    database_url: str,
    kafka_settings: KafkaSettings,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: tuple[FakeOpenAI, LocalServer],
) -> AsyncIterator[World]:
    exporter = InMemorySpanExporter()
    providers = {
        s: memory_provider(s, exporter) for s in (CONFIG_API, ROUTER, HEALTH_WORKER, METERING)
    }
    async with contextlib.AsyncExitStack() as stack:
        for p in providers.values():
            stack.callback(p.shutdown)
        config_url = await stack.enter_async_context(
            _serve_config_api(database_url, kafka_settings, providers[CONFIG_API])
        )
        router = RouterApp(
            RouterSettings.model_validate(
                {
                    "kafka": kafka_settings,
                    "config_url": config_url,
                    "admin_token": ADMIN,
                    "encryption_keys": ENC_KEY,
                    "state_dir": Path(tmp_path_factory.mktemp("router-cp-trace")),
                    "usage_topic": f"turnout.test.usage.cptrace.{TAG}",
                }
            ),
            tracer_provider=providers[ROUTER],
        )
        stack.push_async_callback(router.shutdown)
        await router.startup()  # followers only: no request goes to the router here

        common, hs = make_settings(
            database_url,
            kafka_settings,
            config_url,
            f"health_cptrace_{TAG}",
            probe_interval_s=0.3,
            probe_timeout_s=2.0,
            leader_retry_s=0.2,
        )
        health = create_health_worker(common, hs, tracer_provider=providers[HEALTH_WORKER])
        await stack.enter_async_context(running(health))

        runtime = Runtime(
            MeteringSettings.model_validate(
                {
                    "database_url": database_url,
                    "admin_token": ADMIN,
                    "config_url": config_url,
                    "kafka": kafka_settings,
                    "metering_schema": f"metering_cptrace_{TAG}",
                    "metering_group": f"metering-cptrace-{TAG}",
                    "usage_topic": f"turnout.test.usage.cptrace.{TAG}",
                    "billing_topic": f"turnout.test.billing.cptrace.{TAG}",
                    "db_pool_max": 4,
                }
            ),
            tracer_provider=providers[METERING],
        )
        stack.push_async_callback(runtime.stop)
        await runtime.start(consume=False)
        transport = httpx.ASGITransport(app=create_metering(runtime=runtime))
        metering = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://metering")
        )
        fake, server = upstream
        yield World(
            config_url, exporter, kafka_settings, router, metering, runtime, fake, server.url
        )


async def test_admin_request_to_config_event_to_every_follower(world: World) -> None:
    trace_id, client_span_id, traceparent = new_traceparent()
    name = f"traced-{TAG}"
    async with httpx.AsyncClient(base_url=world.config_url) as http:
        r = await http.post(
            "/api/v1/providers",
            json={"name": name, "kind": "vllm", "base_url": world.upstream_url + "/v1"},
            headers={**AUTH, "traceparent": traceparent},
        )
    assert r.status_code == 201, r.text
    provider_id = r.json()["id"]

    # config-api's SERVER span continues the caller's trace
    server = await world.span(
        "config-api server",
        _is(CONFIG_API, SpanKind.SERVER, "POST /api/v1/providers", trace_id),
    )
    assert server.parent is not None and server.parent.span_id == client_span_id
    assert attribute(server, "http.route") == "/api/v1/providers"
    assert attribute(server, "http.response.status_code") == 201
    assert attribute(server, "turnout.request_id") == r.headers["x-request-id"]

    # the config event was created in it, and its message carries that context
    producer = await world.span(
        "create span", _is(CONFIG_API, SpanKind.PRODUCER, f"create {CONFIG.name}", trace_id)
    )
    assert producer.parent is not None and producer.parent.span_id == span_context(server).span_id
    assert attribute(producer, "messaging.kafka.message.key") == f"provider:{provider_id}"
    traceparent = await _traced_message(
        world.kafka, CONFIG.name, f"provider:{provider_id}", trace_id
    )
    assert _ids(traceparent) == (trace_id, span_context(producer).span_id)

    # every follower processed it in that trace, as the create span's child
    process = f"process {CONFIG.name}"
    for service in (ROUTER, HEALTH_WORKER, METERING):
        consumer = await world.span(service, _is(service, SpanKind.CONSUMER, process, trace_id))
        assert (
            consumer.parent is not None
            and consumer.parent.span_id == span_context(producer).span_id
        )
        assert attribute(consumer, "messaging.kafka.message.key") == f"provider:{provider_id}"
    assert provider_id in world.router.state.index.providers  # and applied it


async def test_health_probe_to_health_event_to_router_and_config_api(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.config_url) as http:
        r = await http.post(
            "/api/v1/providers",
            json={"name": f"probed-{TAG}", "kind": "vllm", "base_url": world.upstream_url + "/v1"},
            headers=AUTH,
        )
    assert r.status_code == 201, r.text
    provider_id = r.json()["id"]

    # the probe that published the provider's first state (a root span: nothing caused it)
    def publishing_probe(s: ReadableSpan) -> bool:
        return (
            s.kind is SpanKind.PRODUCER
            and s.name == f"create {HEALTH.name}"
            and attribute(s, "messaging.kafka.message.key") == provider_id
        )

    producer = await world.span("health event", publishing_probe)
    trace_id = span_context(producer).trace_id
    probe = await world.span("probe", _is(HEALTH_WORKER, SpanKind.CLIENT, "probe vllm", trace_id))
    assert probe.parent is None
    assert producer.parent is not None and producer.parent.span_id == span_context(probe).span_id
    assert attribute(probe, "turnout.provider.id") == provider_id
    assert attribute(probe, "turnout.health.status") == "healthy"
    assert attribute(probe, "turnout.probe.verdict") == "success"
    assert attribute(probe, "http.response.status_code") == 200
    assert attribute(probe, "turnout.probe.latency_ms") > 0
    assert attribute(probe, "server.address") == "127.0.0.1"
    assert probe.status.status_code is StatusCode.UNSET
    # the probe's HTTP requests carried its context to the upstream (W3C, no baggage)
    sent = [r["headers"].get("traceparent") for r in world.upstream.probes]
    assert any(tp and _ids(tp) == (trace_id, span_context(probe).span_id) for tp in sent)

    traceparent = await _traced_message(world.kafka, HEALTH.name, provider_id, trace_id)
    assert _ids(traceparent) == (trace_id, span_context(producer).span_id)
    process = f"process {HEALTH.name}"
    for service in (ROUTER, CONFIG_API):
        consumer = await world.span(service, _is(service, SpanKind.CONSUMER, process, trace_id))
        assert (
            consumer.parent is not None
            and consumer.parent.span_id == span_context(producer).span_id
        )
        assert attribute(consumer, "messaging.kafka.message.key") == provider_id


async def test_failed_probe_is_an_error_span(world: World) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    async with httpx.AsyncClient(base_url=world.config_url) as http:
        r = await http.post(
            "/api/v1/providers",
            json={"name": f"dead-{TAG}", "kind": "vllm", "base_url": dead},
            headers=AUTH,
        )
    assert r.status_code == 201, r.text
    provider_id = r.json()["id"]
    probe = await world.span(
        "failed probe",
        lambda s: s.name == "probe vllm" and attribute(s, "turnout.provider.id") == provider_id,
    )
    assert probe.status.status_code is StatusCode.ERROR
    assert attribute(probe, "turnout.probe.verdict") == "failure"
    assert attribute(probe, "turnout.health.status") == "down"
    assert attribute(probe, "error.type") == "probe_failed"


async def test_credit_grant_to_credit_event_to_router(world: World) -> None:
    user = f"u-cptrace-{TAG}"
    async with httpx.AsyncClient(base_url=world.config_url) as http:
        r = await http.post("/api/v1/users", json={"id": user}, headers=AUTH)
    assert r.status_code == 201, r.text
    async with asyncio.timeout(20):
        while user not in world.metering_runtime.config.users:
            await asyncio.sleep(0.05)

    trace_id, client_span_id, traceparent = new_traceparent()
    r = await world.metering.post(
        f"/api/v1/credits/{user}/grant",
        json={"amount_usd": "5.00", "reason": "trace test"},
        headers={**AUTH, "traceparent": traceparent},
    )
    assert r.status_code == 201, r.text
    server = await world.span(
        "metering server",
        _is(METERING, SpanKind.SERVER, "POST /api/v1/credits/{user_id}/grant", trace_id),
    )
    assert server.parent is not None and server.parent.span_id == client_span_id
    producer = await world.span(
        "create span", _is(METERING, SpanKind.PRODUCER, f"create {CREDIT.name}", trace_id)
    )
    assert producer.parent is not None and producer.parent.span_id == span_context(server).span_id
    traceparent = await _traced_message(world.kafka, CREDIT.name, f"user:{user}", trace_id)
    assert _ids(traceparent) == (trace_id, span_context(producer).span_id)
    consumer = await world.span(
        "router", _is(ROUTER, SpanKind.CONSUMER, f"process {CREDIT.name}", trace_id)
    )
    assert consumer.parent is not None and consumer.parent.span_id == span_context(producer).span_id
    assert attribute(consumer, "messaging.kafka.message.key") == f"user:{user}"
