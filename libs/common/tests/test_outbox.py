"""The transactional outbox against real PostgreSQL and a real Kafka-protocol broker."""

import asyncio
import contextlib
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from turnout_common.broker import Producer, ensure_topics
from turnout_common.db import create_pool
from turnout_common.devinfra import TansuBroker
from turnout_common.errors import RequestTooLarge
from turnout_common.migrations import migrate_dsn
from turnout_common.outbox import (
    MAX_EVENT_BYTES,
    OutboxRecord,
    OutboxRelay,
    enqueue,
    enqueue_many,
)
from turnout_common.settings import KafkaSettings
from turnout_common.topics import Topic


async def consume_all(
    settings: KafkaSettings, topic: str, group: str, expect: int, timeout: float = 15.0
) -> list[bytes]:
    """Consume with a group, idempotently (dedup by payload id), until ``expect`` distinct."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    seen: dict[bytes, None] = {}
    try:
        async with asyncio.timeout(timeout):
            while len(seen) < expect:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for rec in records:
                        assert rec.value is not None
                        seen.setdefault(rec.value, None)
                await consumer.commit()
        extra = await consumer.getmany(timeout_ms=300)
        for records in extra.values():
            seen.update({r.value: None for r in records if r.value is not None})
    finally:
        await consumer.stop()
    return list(seen)


@pytest.fixture
async def pool(database_url: str):
    schema = f"ob_{uuid.uuid4().hex[:8]}"
    await migrate_dsn(database_url, schema, [], outbox=True)
    pool = await create_pool(database_url, schema=schema)
    yield pool, schema
    await pool.close()


async def test_committed_rows_are_relayed_in_order_and_rolled_back_never(
    pool, kafka_settings: KafkaSettings, unique_topic: str
) -> None:
    pg, schema = pool
    await ensure_topics(kafka_settings, [Topic(unique_topic, 1, False, "test")])
    async with pg.acquire() as conn:
        for i in range(5):
            async with conn.transaction():
                await enqueue(conn, schema, unique_topic, f"k{i}", f"v{i}".encode())
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                await enqueue(conn, schema, unique_topic, "rolled", b"never")
                raise RuntimeError("abort the change")
    producer = Producer(kafka_settings)
    await producer.start()
    try:
        relay = OutboxRelay(pg, schema, producer.send_outbox)
        assert await relay.drain() == 5
        assert await relay.pending() == 0
        assert await relay.drain() == 0
    finally:
        await producer.stop()
    got = await consume_all(kafka_settings, unique_topic, f"g-{uuid.uuid4().hex}", 5)
    assert got == [f"v{i}".encode() for i in range(5)]


async def test_enqueue_many_adds_rows_in_order_in_the_callers_transaction(pool) -> None:
    pg, schema = pool
    sent: list[OutboxRecord] = []

    async def send(records):
        sent.extend(records)

    async with pg.acquire() as conn:
        async with conn.transaction():
            await enqueue(conn, schema, "t", "first", b"0")
            rows = [(f"k{i}", f"{i}".encode()) for i in range(1, 4)] + [(None, None)]
            assert await enqueue_many(conn, schema, "t", rows, {"h": "v"}) == 4
            assert await enqueue_many(conn, schema, "t", []) == 0
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                await enqueue_many(conn, schema, "t", [(b"rolled", b"never")])
                raise RuntimeError("abort the change")
    relay = OutboxRelay(pg, schema, send)
    assert await relay.drain() == 5
    assert [(r.key, r.payload) for r in sent] == [
        (b"first", b"0"),
        (b"k1", b"1"),
        (b"k2", b"2"),
        (b"k3", b"3"),
        (None, None),
    ]
    assert [r.headers for r in sent] == [{}] + [{"h": "v"}] * 4
    assert [r.topic for r in sent] == ["t"] * 5


async def test_change_committed_while_broker_down_is_delivered_after(
    pool, tmp_path, kafka_settings: KafkaSettings
) -> None:
    """Uses a private broker so stopping it does not disturb other tests."""
    pg, schema = pool
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    settings = kafka_settings.model_copy(
        update={"bootstrap": broker.bootstrap, "request_timeout_ms": 2000}
    )
    topic = f"turnout.test.{uuid.uuid4().hex[:8]}"
    try:
        await ensure_topics(settings, [Topic(topic, 1, False, "test")])
        broker.stop()
        async with pg.acquire() as conn, conn.transaction():
            await enqueue(conn, schema, topic, "k", b"while-down")
        relay = OutboxRelay(pg, schema, _failing_send(settings), poll_interval=0.1)
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(1.0)
        assert await relay.pending() == 1
        broker.start()
        await ensure_topics(settings, [Topic(topic, 1, False, "test")])
        async with asyncio.timeout(20):
            while await relay.pending():
                await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        group = f"g-{uuid.uuid4().hex}"
        assert await consume_all(settings, topic, group, 1) == [b"while-down"]
    finally:
        broker.stop()


def _failing_send(settings: KafkaSettings):
    """A send that opens a fresh producer each time, like a relay after a broker restart."""

    async def send(records):
        producer = Producer(settings)
        try:
            await asyncio.wait_for(producer.start(), 3)
            await asyncio.wait_for(producer.send_outbox(records), 5)
        finally:
            await producer.stop()

    return send


async def test_two_relays_do_not_double_send(
    pool, kafka_settings: KafkaSettings, unique_topic: str
) -> None:
    pg, schema = pool
    await ensure_topics(kafka_settings, [Topic(unique_topic, 1, False, "test")])
    async with pg.acquire() as conn:
        for i in range(200):
            async with conn.transaction():
                await enqueue(conn, schema, unique_topic, None, f"{i:04d}".encode())
    producer = Producer(kafka_settings)
    await producer.start()
    try:
        relays = [OutboxRelay(pg, schema, producer.send_outbox, batch_size=20) for _ in range(2)]
        counts = await asyncio.gather(*(r.drain() for r in relays))
        assert sum(counts) + await relays[0].drain() == 200
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        unique_topic,
        bootstrap_servers=kafka_settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(15):
            while len(values) < 200:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    values.extend(r.value for r in recs)
        values.extend(
            r.value for recs in (await consumer.getmany(timeout_ms=300)).values() for r in recs
        )
    finally:
        await consumer.stop()
    assert values == [f"{i:04d}".encode() for i in range(200)]


async def test_pool_decodes_json(database_url: str) -> None:
    pg = await create_pool(database_url)
    try:
        assert await pg.fetchval("SELECT '{\"a\": 1}'::jsonb") == {"a": 1}
    finally:
        await pg.close()
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect("postgresql://postgres@127.0.0.1:1/none", timeout=1)


async def test_an_event_too_big_to_publish_is_refused_before_commit(pool) -> None:
    pg, schema = pool
    async with pg.acquire() as conn:
        with pytest.raises(RequestTooLarge):
            async with conn.transaction():
                await enqueue(conn, schema, "t", "k", b"x" * (MAX_EVENT_BYTES + 1))
        with pytest.raises(RequestTooLarge):
            await enqueue_many(conn, schema, "t", [("a", b"ok"), ("b", b"x" * 2_000_000)])
    assert await OutboxRelay(pg, schema, _never).pending() == 0


async def _never(_: object) -> None:
    raise AssertionError("nothing is sent")


async def test_a_row_the_broker_refuses_is_found_and_can_be_set_aside(
    pool, kafka_settings: KafkaSettings, unique_topic: str
) -> None:
    """Issue 21 item 4: a 20 MB row looped the relay forever, silently, holding every row
    behind it. Now the head is isolated, shown (stuck, metric) and can be set aside."""
    pg, schema = pool
    await ensure_topics(kafka_settings, [Topic(unique_topic, 1, False, "test")])
    async with pg.acquire() as conn:
        await enqueue(conn, schema, unique_topic, "a", b"first")
        # bypasses enqueue's size check, as a row written before it existed would
        big = await conn.fetchval(
            f"INSERT INTO {schema}.outbox (topic, key, payload) VALUES ($1, 'big', $2)"
            " RETURNING id",
            unique_topic,
            b"x" * 2_000_000,
        )
        await enqueue(conn, schema, unique_topic, "b", b"after")
    producer = Producer(kafka_settings)
    await producer.start()
    stuck = REGISTRY.get_sample_value
    try:
        relay = OutboxRelay(pg, schema, producer.send_outbox, stuck_after_s=0.0, service=schema)
        for _ in range(3):  # the batch fails; the head goes alone; then the big row is head
            with contextlib.suppress(Exception):
                await relay.drain()
        assert relay.head_failure is not None and relay.head_failure.row_id == big
        assert relay.stuck()
        assert stuck("turnout_outbox_stuck", {"service": schema}) == 1
        assert "MessageSizeTooLarge" in relay.head_failure.error
        assert await relay.set_aside(big, "2 MB: the broker takes 1 MB")
        assert not relay.stuck()
        assert stuck("turnout_outbox_stuck", {"service": schema}) == 0
        assert await relay.drain() == 1
        assert await relay.pending() == 0
    finally:
        await producer.stop()
    got = await consume_all(kafka_settings, unique_topic, f"g-{uuid.uuid4().hex}", 2)
    assert got == [b"first", b"after"]
    async with pg.acquire() as conn:
        kept = await conn.fetchval(f"SELECT set_aside FROM {schema}.outbox WHERE id = $1", big)
    assert kept == "2 MB: the broker takes 1 MB"
