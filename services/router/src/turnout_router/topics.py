"""Create the topics the router reads and writes, without importing faststream.

Same behaviour as ``turnout_common.broker.ensure_topics``; that module imports faststream and
OpenTelemetry at import time (~1 s and ~10 MB here), which the data plane does not need.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from turnout_common.settings import KafkaSettings
from turnout_common.topics import Topic


async def ensure_topics(settings: KafkaSettings, topics: Iterable[Topic]) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap, request_timeout_ms=settings.request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if t.compacted else {},
            )
            for t in topics
            if t.name not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
