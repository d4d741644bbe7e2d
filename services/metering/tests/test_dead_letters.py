"""One record never holds metering (issue 21 item 1).

Before: a usage record with a NUL in ``model`` (an old router put it on the topic) made
PostgreSQL refuse the whole batch; metering retried it every few seconds forever, /readyz
stayed ready and the lag metric said 0. Now the record is set aside (dead letter, with the
reason, counted, listed for admins) and everything behind it is metered.
"""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from turnout_common.broker import Producer
from turnout_common.testing.waiting import wait_until
from turnout_metering.app import create_app
from turnout_metering.runtime import Runtime

from .conftest import ADMIN, usage


def dead_letter_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("turnout_metering_dead_letters_total", {"reason": reason})
    return value or 0.0


async def meter(runtime: Runtime, raws: list[bytes]) -> None:
    topic = runtime.settings.usage_topic
    producer = Producer(runtime.settings.kafka)
    await producer.start()
    try:
        await producer.send_many([(topic, b"k", raw, ()) for raw in raws])
    finally:
        await producer.stop()


async def logged(runtime: Runtime) -> set[str]:
    async with runtime.pool.acquire() as conn:
        return {r[0] for r in await conn.fetch("SELECT request_id FROM usage_log")}


async def test_poison_records_are_set_aside_and_the_rest_is_metered(runtime: Runtime) -> None:
    before = dead_letter_count("invalid"), dead_letter_count("refused")
    good = [usage(f"ok-{i}", cost="0.25") for i in range(6)]
    nul = usage("nul-model", model="x\u0000").to_bytes()
    # a record that parses but that the database refuses on its own (here a CHECK this test
    # adds; in the field e.g. text an index row cannot hold): found by splitting the batch
    async with runtime.pool.acquire() as conn:
        await conn.execute(
            "ALTER TABLE usage_log ADD CONSTRAINT test_poison CHECK (request_id <> 'poison')"
        )
    poison = usage("poison").to_bytes()
    raws = [good[0].to_bytes(), nul, good[1].to_bytes(), poison]
    raws += [e.to_bytes() for e in good[2:]]
    await meter(runtime, raws)
    consumer = await runtime.start_consumer()
    await wait_until(lambda: consumer.batches > 0 and consumer.lag() == 0, timeout=30)
    assert await logged(runtime) == {f"ok-{i}" for i in range(6)}
    assert dead_letter_count("invalid") == before[0] + 1
    assert dead_letter_count("refused") == before[1] + 1

    app = create_app(runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metering"
    ) as c:
        r = await c.get("/api/v1/dead-letters", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == 2
        reasons = " | ".join(d["reason"] for d in page["data"])
        assert "NUL" in reasons and "23514" in reasons, reasons
        assert all(d["value_base64"] for d in page["data"])
        # readiness: caught up, so ready
        r = await c.get("/readyz")
        assert r.json()["checks"]["consumer"] is True
        # users may not read them
        r = await c.get("/api/v1/dead-letters", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
    await consumer.stop()


async def test_lag_counts_what_is_not_committed(runtime: Runtime) -> None:
    """A consumer that reads but cannot write shows its lag (and is not ready)."""
    await meter(runtime, [usage(f"lag-{i}").to_bytes() for i in range(5)])
    consumer = await runtime.start_consumer()
    await wait_until(lambda: consumer.batches > 0 and consumer.lag() == 0, timeout=30)
    assert consumer.stuck(0.0) is False
    await consumer.stop()
