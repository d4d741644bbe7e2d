"""The lifecycle every service's Kafka consumer-group reader shares.

A :class:`GroupConsumer` makes its aiokafka consumer with every timeout from the settings
(:func:`turnout_common.broker.make_consumer`: manual commits), runs :meth:`GroupConsumer.run`
as one background task, and stops at once (cancel the task, then leave the group: an
uncommitted batch is simply delivered again to whoever gets the partition). What a subclass
writes is only its loop: poll, handle, commit.

    open() ──▶ start_background() ──▶ run() … ──▶ stop()
    start() = open() + start_background()

Used by metering's usage consumer, its alert fan-out and the health-worker's passive usage
reader. (The followers of :mod:`turnout_common.follow` read without a group, assigning
partitions themselves, and keep their own loop; they share :class:`Reader`: the task, and the
stop.)
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

from aiokafka import AIOKafkaConsumer

from turnout_common.broker import make_consumer, stop_consumer
from turnout_common.settings import KafkaSettings
from turnout_common.tasks import cancel


class Reader(ABC):
    """A Kafka consumer and the one background task that reads it (:meth:`run`)."""

    task_name = "consumer"
    _consumer: AIOKafkaConsumer | None
    _task: asyncio.Task[None] | None

    @abstractmethod
    async def run(self) -> None:
        """The loop; runs until cancelled."""

    def start_background(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=self.task_name)
        return self._task

    async def stop(self) -> None:
        """Stop at once (cancel the task, then close the consumer); an uncommitted batch is
        simply delivered again later."""
        await cancel(self._task)
        self._task = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await stop_consumer(consumer)


class GroupConsumer(Reader):
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        *,
        group: str,
        client_suffix: str,
        offset_reset: str = "latest",
        **options: Any,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._group = group
        self._client_suffix = client_suffix
        self._options = {"auto_offset_reset": offset_reset, **options}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "open() first"
        return self._consumer

    @property
    def assigned(self) -> bool:
        """Whether the group gave this member any partition yet."""
        return self._consumer is not None and bool(self._consumer.assignment())

    async def open(self) -> None:
        """Join the group (no task yet: tests poll by hand)."""
        self._consumer = make_consumer(
            self._kafka,
            self._topic,
            group_id=self._group,
            client_suffix=self._client_suffix,
            **self._options,
        )
        await self._consumer.start()

    async def start(self) -> None:
        await self.open()
        self.start_background()

    @abstractmethod
    async def run(self) -> None:
        """The loop: poll, handle, commit; runs until cancelled."""
