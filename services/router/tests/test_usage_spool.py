"""Usage produced while the broker is down is spooled to disk and arrives after it returns."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout_common.broker import ensure_topics
from turnout_common.devinfra import TansuBroker
from turnout_common.events import UsageEvent
from turnout_common.settings import KafkaSettings
from turnout_common.testing.plugin import SMALL_KAFKA_TIMEOUTS
from turnout_common.topics import USAGE
from turnout_router.entities import micro_price
from turnout_router.pricing import nano_str, price, price_nano
from turnout_router.usage import UsageEmitter

from .conftest import usage_record

COST = "0.000002000"
"""10 input and 5 output tokens at 0.10 / 0.20 per million: records arrive priced."""


async def read_all(settings: KafkaSettings, want: set[str], timeout: float = 20) -> dict[str, Any]:
    c = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        fetch_max_wait_ms=20,
        auto_offset_reset="earliest",
    )
    await c.start()
    try:
        parts = [TopicPartition(USAGE.name, p) for p in range(USAGE.partitions)]
        c.assign(parts)
        await c.seek_to_beginning(*parts)
        got: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while not want <= set(got):
            assert time.monotonic() < deadline, f"missing {want - set(got)}"
            for recs in (await c.getmany(timeout_ms=200)).values():
                for r in recs:
                    v = orjson.loads(r.value)
                    got[v["request_id"]] = v
        return got
    finally:
        await c.stop()


def test_price_rounds_half_up_and_prices_cached_tokens() -> None:
    p = (Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))
    assert price(1000, 500, 200, p) == Decimal("0.000435000")  # 800*.15+200*.075+500*.6
    assert price(1, 0, 0, (Decimal("0.0015"), Decimal(0), Decimal(0))) == Decimal("0.000000002")


async def test_spooled_while_broker_down_then_delivered(tmp_path: Path) -> None:
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    settings = KafkaSettings.model_validate(
        {
            "bootstrap": broker.bootstrap,
            "client_id": "spool-test",
            **SMALL_KAFKA_TIMEOUTS,
            "request_timeout_ms": 1000,
        }
    )
    spool = tmp_path / "router-spool"
    emitter = UsageEmitter(
        settings,
        USAGE.name,
        spool,
        flush_interval_s=0.01,
        send_timeout_s=1.0,
        replay_interval_s=0.2,
    )
    try:
        await ensure_topics(settings, (USAGE,))
        await emitter.start()
        emitter.emit(usage_record("before-outage", cost_usd=COST))
        await read_all(settings, {"before-outage"})

        broker.stop()
        down = {f"during-outage-{i}" for i in range(5)}
        for rid in sorted(down):
            emitter.emit(usage_record(rid, cost_usd=COST))  # never blocks, never raises
        deadline = time.monotonic() + 10
        while emitter.spooled < 5:
            assert time.monotonic() < deadline, "records were not spooled"
            await asyncio.sleep(0.05)
        assert list(spool.glob("*.jsonl"))

        broker.start()  # memory storage: the topic is gone, like a fresh cluster
        await ensure_topics(settings, (USAGE,))
        got = await read_all(settings, down)
        ev = UsageEvent.model_validate(got["during-outage-0"])
        assert ev.cost_usd == Decimal("0.000002000") and ev.input_tokens == 10
        deadline = time.monotonic() + 5
        while list(spool.glob("*.jsonl")):
            assert time.monotonic() < deadline, "spool files were not removed after replay"
            await asyncio.sleep(0.05)
    finally:
        await emitter.stop()
        broker.stop()


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.lists(st.decimals(min_value=0, max_value=1000, places=6), min_size=3, max_size=3),
)
def test_integer_pricing_equals_decimal_pricing(
    inp: int, out: int, cached: int, prices: list[Decimal]
) -> None:
    micro = tuple(micro_price(p) for p in prices)
    assert None not in micro
    exact = price(inp, out, cached, (prices[0], prices[1], prices[2]))
    assert Decimal(nano_str(price_nano(inp, out, cached, micro))) == exact  # type: ignore[arg-type]
