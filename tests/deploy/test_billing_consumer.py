"""examples/billing_consumer.py against the real test broker: totals, de-duplication, resume."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from turnout_common.broker import Producer, ensure_topics
from turnout_common.events import BillingEvent
from turnout_common.settings import KafkaSettings
from turnout_common.testing.plugin import SMALL_KAFKA_TIMEOUTS
from turnout_common.topics import Topic


def billing(subject: str, cost: str, request_id: str | None = None) -> BillingEvent:
    return BillingEvent(
        id=request_id or f"req-{uuid.uuid4().hex}",
        time=datetime.now(UTC),
        subject=subject,
        data={"cost_usd": cost, "input_tokens": 10, "output_tokens": 5, "model": "llama-8b"},
    )


async def produce(settings: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = Producer(settings)
    await producer.start()
    try:
        await producer.send_many((topic, b"k", v, ()) for v in values)
    finally:
        await producer.stop()


async def run_example(repo_root: Path, bootstrap: str, topic: str, group: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(repo_root / "examples" / "billing_consumer.py"),
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--idle-exit",
        "2",
        "--session-timeout-ms",
        str(SMALL_KAFKA_TIMEOUTS["session_timeout_ms"]),
        "--heartbeat-interval-ms",
        str(SMALL_KAFKA_TIMEOUTS["heartbeat_interval_ms"]),
        "--fetch-max-wait-ms",
        str(SMALL_KAFKA_TIMEOUTS["fetch_max_wait_ms"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_example_totals_per_subject_and_resumes_after_restart(
    kafka_settings: KafkaSettings, unique_topic: str, repo_root: Path
) -> None:
    await ensure_topics(kafka_settings, [Topic(unique_topic, 2, False, "test")])
    first = billing("user:alice", "0.000001500")
    events = [
        first,
        billing("user:alice", "0.25"),
        billing("user:bob", "1.000000001"),
    ]
    values = [e.to_bytes() for e in events]
    values.append(first.to_bytes())  # redelivered: must not be counted twice
    values.append(b"not json")  # a poison message is skipped, not fatal
    await produce(kafka_settings, unique_topic, values)

    group = f"billing-{uuid.uuid4().hex[:8]}"
    summary = await run_example(repo_root, kafka_settings.bootstrap, unique_topic, group)
    assert summary["events"] == 3
    assert summary["duplicates"] == 1
    assert summary["rejected"] == 1
    assert summary["subjects"]["user:alice"]["cost_usd"] == "0.250001500"
    assert summary["subjects"]["user:alice"]["events"] == 2
    assert summary["subjects"]["user:bob"] == {
        "cost_usd": "1.000000001",
        "input_tokens": 10,
        "output_tokens": 5,
        "events": 1,
    }

    # offsets were committed: a restart of the same group sees only what is new
    await produce(kafka_settings, unique_topic, [billing("user:carol", "0.5").to_bytes()])
    again = await run_example(repo_root, kafka_settings.bootstrap, unique_topic, group)
    assert again["events"] == 1
    assert list(again["subjects"]) == ["user:carol"]


@pytest.fixture(scope="module")
def example(load_file: Callable[[str], ModuleType]) -> ModuleType:
    return load_file("examples/billing_consumer.py")


def test_ledger_ignores_a_second_delivery_of_the_same_id(example: ModuleType) -> None:
    ledger = example.Ledger()
    event = billing("user:alice", "0.1").to_bytes()
    assert ledger.apply(event) is True
    assert ledger.apply(event) is False
    assert ledger.subjects["user:alice"].cost_usd == Decimal("0.1")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"[]", "CloudEvents"),
        (b'{"specversion": "1.0", "type": "other", "id": "x", "subject": "s"}', "type"),
        (
            b'{"specversion": "1.0", "type": "io.turnout.usage.billed.v1", "id": "x",'
            b' "subject": "s", "data": {"cost_usd": "abc"}}',
            "decimal",
        ),
    ],
)
def test_parse_rejects_what_is_not_a_billing_event(
    example: ModuleType, raw: bytes | None, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        example.parse(raw)
