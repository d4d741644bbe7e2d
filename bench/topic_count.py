#!/usr/bin/env python3
"""Count the records of a topic by reading it from the beginning (and their distinct keys).

  topic_count.py BOOTSTRAP [TOPIC]     prints "<records> <distinct keys>"
                                       (default topic: turnout.usage.v1)

Reads instead of trusting end offsets: Tansu 0.6.0 reports a partition's end offset as
the *last batch's base offset + 1*, not the last record's offset + 1.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition

from turnout_common.topics import USAGE


async def count_records(
    bootstrap: str, topic: str = USAGE.name, idle_s: float = 1.0
) -> tuple[int, int]:
    """(records, distinct keys) after ``idle_s`` seconds without a new record."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return 0, 0
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records, keys = 0, set()
        loop = asyncio.get_running_loop()
        last = loop.time()
        while loop.time() - last < idle_s:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for recs in batches.values():
                records += len(recs)
                keys.update(r.key for r in recs)
                last = loop.time()
        return records, len(keys)
    finally:
        await consumer.stop()


if __name__ == "__main__":
    topic = sys.argv[2] if len(sys.argv) > 2 else USAGE.name
    print(*asyncio.run(count_records(sys.argv[1], topic)))
