"""Kafka helpers that need no broker: lazy imports, and no leaked client on a failed start."""

import subprocess
import sys

import pytest
from aiokafka.errors import KafkaConnectionError

from turnout_common.broker import Producer
from turnout_common.devinfra import free_port
from turnout_common.settings import KafkaSettings


def test_importing_broker_helpers_does_not_import_faststream() -> None:
    code = (
        "import sys\n"
        "from turnout_common.broker import Producer, ensure_topics, wait_for_broker\n"
        "heavy = [m for m in ('faststream', 'opentelemetry') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_failed_start_closes_the_client() -> None:
    settings = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", request_timeout_ms=1000)
    producer = Producer(settings)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    assert producer._producer._closed
    await producer.stop()  # a no-op after a failed start
