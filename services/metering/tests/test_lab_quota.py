"""Issue 16 item 5: a tier's monthly testing-lab quota. Lab requests (``source: lab``, not
refused) are counted per user and period; reaching the quota publishes ``lab_blocked`` on the
credit topic (the router then refuses lab requests); other requests do not count."""

from __future__ import annotations

from turnout_common.broker import Producer
from turnout_common.events import ConfigEvent
from turnout_common.testing.waiting import wait_until
from turnout_common.topics import CONFIG
from turnout_metering.runtime import Runtime

from .conftest import CreditWatch, usage


async def test_lab_quota_blocks_lab_requests(runtime: Runtime) -> None:
    watch = CreditWatch(runtime.settings.kafka, runtime.settings.credit_topic)
    await watch.start()
    producer = Producer(runtime.settings.kafka)
    await producer.start()
    try:
        await runtime.start_consumer()
        tier = ConfigEvent(
            revision=200, entity="tier", entity_id="free", op="upsert",
            data={"name": "free", "rank": 0, "monthly_credits_usd": "0", "lab_monthly_quota": 3},
        )  # fmt: skip
        await producer.send(CONFIG.name, tier.to_bytes(), key=tier.key.encode())
        await wait_until(lambda: runtime.config.lab_quota("bob") == 3)
        topic = runtime.settings.usage_topic
        records = [usage(user_id="bob", key_id="k-bob", cost="0.0001", source="lab")]
        records += [usage(user_id="bob", key_id="k-bob", cost="0.0001")]  # not lab
        records += [
            usage(
                user_id="bob",
                key_id="k-bob",
                cost="0",
                source="lab",
                status=429,
                outcome="rejected",
            ),
        ]  # fmt: skip  (a refused one does not count)
        records += [usage(user_id="bob", key_id="k-bob", cost="0.0001", source="lab")]
        for e in records:
            await producer.send(topic, e.to_bytes(), key=e.request_id.encode())
        await wait_until(lambda: (e := watch.latest("user:bob")) and e.lab_quota == 3)

        async def counted() -> bool:
            return await _lab_count(runtime, "bob") == 2

        await wait_until(counted)
        bob = watch.latest("user:bob")
        assert bob is not None and not bob.lab_blocked
        third = usage(user_id="bob", key_id="k-bob", cost="0.0001", source="lab")
        await producer.send(topic, third.to_bytes(), key=third.request_id.encode())
        await wait_until(lambda: (e := watch.latest("user:bob")) and e.lab_blocked)
        bob = watch.latest("user:bob")
        assert bob is not None and bob.lab_requests == 3 and not bob.blocked
        key = watch.latest("key:k-bob")
        assert key is None or not key.lab_blocked  # the quota is the user's
    finally:
        await producer.stop()
        await watch.stop()


async def _lab_count(runtime: Runtime, user: str) -> int:
    async with runtime.pool.acquire() as conn:
        n = await conn.fetchval(
            "SELECT lab_requests FROM spend WHERE subject_type = 'user' AND subject_id = $1",
            user,
        )
    return int(n or 0)
