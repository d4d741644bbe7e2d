"""A broker that loses its log (Tansu restarted with memory storage) loses no usage records.

After such a restart Tansu acknowledges records sent to the topic it no longer has and drops
them. The emitter notices that a partition's acknowledged offsets went backwards, re-creates
the topic over a new connection and re-sends those records and the recently acknowledged ones.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import RecordMetadata

from turnout_common.broker import ensure_topics
from turnout_common.devinfra import TansuBroker
from turnout_common.settings import KafkaSettings
from turnout_common.testing.plugin import SMALL_KAFKA_TIMEOUTS
from turnout_common.topics import USAGE
from turnout_router.usage import BrokerLostLog, UsageEmitter

from .conftest import usage_record


def ack(partition: int, offset: int) -> RecordMetadata:
    tp = TopicPartition(USAGE.name, partition)
    return RecordMetadata(USAGE.name, partition, tp, offset, -1, 0, 0)


def test_offsets_going_backwards_mean_the_log_was_lost(tmp_path: Path) -> None:
    emitter = UsageEmitter(KafkaSettings(), USAGE.name, tmp_path)
    emitter._check_offsets(0, [ack(0, 0), ack(0, 10)], [10, 5])
    emitter._check_offsets(1, [ack(1, 0)], [3])
    emitter._check_offsets(0, [ack(0, 40)], [1])  # other producers wrote in between: fine
    with pytest.raises(BrokerLostLog):
        emitter._check_offsets(1, [ack(1, 0)], [3])
    emitter._check_offsets(0, [ack(0, 0)], [1])  # a new log: no stale expectations remain


async def read_keys(settings: KafkaSettings, want: set[str], timeout: float = 20) -> set[str]:
    c = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, fetch_max_wait_ms=20, auto_offset_reset="earliest"
    )
    await c.start()
    try:
        parts = [TopicPartition(USAGE.name, p) for p in range(USAGE.partitions)]
        c.assign(parts)
        got: set[str] = set()
        deadline = time.monotonic() + timeout
        while not want <= got:
            assert time.monotonic() < deadline, f"missing {sorted(want - got)}"
            for recs in (await c.getmany(timeout_ms=200)).values():
                got.update(orjson.loads(r.value)["request_id"] for r in recs)
        return got
    finally:
        await c.stop()


async def test_records_survive_a_broker_restart_the_producer_did_not_notice(
    tmp_path: Path,
) -> None:
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    settings = KafkaSettings.model_validate(
        {"bootstrap": broker.bootstrap, "client_id": "log-loss-test", **SMALL_KAFKA_TIMEOUTS}
    )
    emitter = UsageEmitter(  # idle_check_s=0: every send starts with a metadata round trip
        settings,
        USAGE.name,
        tmp_path / "spool",
        flush_interval_s=0.01,
        replay_interval_s=0.2,
        idle_check_s=0,
    )
    try:
        await ensure_topics(settings, (USAGE,))
        await emitter.start()
        before = {f"before-{i}" for i in range(8)}
        for rid in sorted(before):  # one flush each: every partition gets acknowledged offsets
            emitter.emit(usage_record(rid))
            await asyncio.sleep(0.05)
        await read_keys(settings, before)

        await asyncio.to_thread(broker.kill)  # while idle: the producer sees no failure
        await asyncio.to_thread(broker.start)
        after = {f"after-{i}" for i in range(8)}
        for rid in sorted(after):
            emitter.emit(usage_record(rid))
            await asyncio.sleep(0.05)
        # the new (empty) broker ends up with both: the new records and the lost old ones
        await read_keys(settings, before | after)
        assert emitter.log_losses >= 1 and emitter.resent >= len(before)
    finally:
        await emitter.stop()
        broker.stop()
