"""metering_ingest produces valid usage records and sees a real consumer drain them."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from metering_ingest import (
    count_probe,
    drain,
    group_lag_probe,
    make_records,
    parse_metric,
    produce,
    sql_counter,
)
from topic_count import count_records

from turnout_common.events import UsageEvent
from turnout_common.settings import KafkaSettings


def test_records_are_valid_usage_events_with_redeliveries() -> None:
    records = make_records(100, duplicates=0.1)
    assert len(records) == 110
    events = [UsageEvent.from_bytes(v) for _, v in records]
    assert all(k.decode() == e.request_id for (k, _), e in zip(records, events, strict=True))
    assert len({e.request_id for e in events}) == 100
    assert len({e.event_id for e in events}) == 110
    assert all(e.cost_usd > 0 for e in events)


def test_parse_metric_sums_labelled_samples() -> None:
    text = (
        "# HELP turnout_metering_usage_records_total records\n"
        "# TYPE turnout_metering_usage_records_total counter\n"
        'turnout_metering_usage_records_total{outcome="success"} 1200.0\n'
        'turnout_metering_usage_records_total{outcome="error"} 3\n'
        "turnout_metering_usage_records_created 1.7e9\n"
    )
    assert parse_metric(text, "turnout_metering_usage_records_total") == 1203.0
    assert parse_metric(text, "absent_total") == 0.0
    assert parse_metric(text, 'turnout_metering_usage_records_total{outcome="error"}') == 3.0


async def consume_and_commit(settings: KafkaSettings, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


async def test_group_lag_drains_to_zero(kafka_settings: KafkaSettings, unique_topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique_topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    records = make_records(400, duplicates=0.05)
    _, ends = await produce(kafka_settings.bootstrap, unique_topic, records)
    assert sum(ends.values()) == 420
    assert await count_records(kafka_settings.bootstrap, unique_topic, idle_s=0.5) == (420, 400)
    group = unique_topic + ".metering"
    probe = group_lag_probe(kafka_settings.bootstrap, group, ends)
    assert await probe() == 420  # nobody consumed yet
    task = asyncio.create_task(consume_and_commit(kafka_settings, unique_topic, group))
    try:
        _, max_lag, caught_up = await drain(probe, timeout=60)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert caught_up
    assert max_lag == 420


async def test_row_count_probe_on_a_real_database(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE bench_usage (request_id text PRIMARY KEY)")
        await conn.execute("INSERT INTO bench_usage VALUES ('a'), ('b')")
        counter = sql_counter(database_url, "SELECT count(*) FROM bench_usage")
        probe = count_probe(counter, await counter() + 3)
        assert await probe() == 3
        await conn.execute("INSERT INTO bench_usage VALUES ('c'), ('d'), ('e')")
        assert await probe() == 0
    finally:
        await conn.execute("DROP TABLE IF EXISTS bench_usage")
        await conn.close()
