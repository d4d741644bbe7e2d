"""Budgets, prepaid credit and monthly rollover, published on the credit topic."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from turnout_common.broker import Producer
from turnout_common.events import ConfigEvent
from turnout_common.testing.waiting import wait_until
from turnout_common.topics import CONFIG
from turnout_metering.clock import ManualClock
from turnout_metering.runtime import Runtime

from .conftest import CreditWatch, usage


async def ledger_check(rt: Runtime, user_id: str) -> tuple[Decimal, Decimal]:
    async with rt.pool.acquire() as conn:
        balance = await conn.fetchval(
            "SELECT balance_usd FROM credit_accounts WHERE user_id = $1", user_id
        )
        total = await conn.fetchval(
            "SELECT coalesce(sum(amount_usd), 0) FROM credit_ledger WHERE user_id = $1", user_id
        )
    return balance, total


async def test_user_over_budget_is_blocked_on_the_credit_topic(runtime: Runtime) -> None:
    watch = CreditWatch(runtime.settings.kafka, runtime.settings.credit_topic)
    await watch.start()
    producer = Producer(runtime.settings.kafka)
    await producer.start()
    try:
        await runtime.start_consumer()
        topic = runtime.settings.usage_topic
        first = usage(user_id="bob", key_id="k-bob", cost="0.40")
        await producer.send(topic, first.to_bytes(), key=first.request_id.encode())
        await wait_until(lambda: (e := watch.latest("user:bob")) and e.spent_usd == Decimal("0.4"))
        bob = watch.latest("user:bob")
        assert bob is not None and not bob.blocked and bob.remaining_usd == Decimal("0.6")
        # the same record again plus two new ones: 0.40 + 0.35 + 0.30 = 1.05 >= 1.00
        more = [usage(user_id="bob", key_id="k-bob", cost=c) for c in ("0.35", "0.30")]
        for e in [first, *more]:
            await producer.send(topic, e.to_bytes(), key=e.request_id.encode())
        await wait_until(lambda: (e := watch.latest("user:bob")) and e.blocked)
    finally:
        await producer.stop()
        await watch.stop()
    bob = watch.latest("user:bob")
    key = watch.latest("key:k-bob")
    assert bob is not None and bob.spent_usd == Decimal("1.05") and bob.remaining_usd == 0
    assert bob.limit_usd == Decimal("1.00") and bob.seq > 1
    assert key is not None and key.blocked and key.limit_usd == Decimal("0.50")
    seqs = [e.seq for e in watch.events if e.key == "user:bob"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_prepaid_ledger_balance_matches_entries(runtime: Runtime) -> None:
    # alice's tier grants 10.00 a month; an admin grants 2.50 more; usage debits it
    await runtime.credits.grant("alice", Decimal("2.50"), "support credit", actor="admin:test")
    ingestor = runtime.ingestor()
    await ingestor.ingest([usage(cost="3.25"), usage(cost="1.000000001")])
    balance, total = await ledger_check(runtime, "alice")
    assert balance == total == Decimal("8.249999999")
    # spending the rest blocks her (balance <= 0) although her budget (50) is not reached
    await ingestor.ingest([usage(cost="8.249999999")])
    balance, total = await ledger_check(runtime, "alice")
    assert balance == total == 0
    async with runtime.pool.acquire() as conn:
        state = await conn.fetchrow(
            "SELECT blocked, balance_usd FROM credit_state WHERE subject_id = 'alice'"
        )
        kinds = [r[0] for r in await conn.fetch("SELECT kind FROM credit_ledger ORDER BY id")]
    assert state["blocked"] and state["balance_usd"] == 0
    assert kinds == ["grant", "grant", "debit", "debit"]


async def test_monthly_rollover_resets_caps_and_tier_credits(
    runtime: Runtime, clock: ManualClock
) -> None:
    nov = datetime(2031, 11, 20, 12, tzinfo=UTC)
    clock.set(nov)
    await runtime.credits.rollover()
    ingestor = runtime.ingestor()
    await ingestor.ingest(
        [
            usage(user_id="bob", key_id="k-bob", cost="1.20", started_at=nov),
            usage(user_id="alice", key_id="k-alice", cost="4.00", started_at=nov),
        ]
    )
    async with runtime.pool.acquire() as conn:
        bob_nov = await conn.fetchrow("SELECT * FROM credit_state WHERE subject_id = 'bob'")
    assert bob_nov["blocked"] and bob_nov["period"] == "2031-11"

    clock.set(datetime(2031, 12, 1, 0, 0, 1, tzinfo=UTC))
    assert await runtime.credits.rollover() is True
    assert await runtime.credits.rollover() is False  # once per period
    async with runtime.pool.acquire() as conn:
        bob_dec = await conn.fetchrow("SELECT * FROM credit_state WHERE subject_id = 'bob'")
        entries = await conn.fetch(
            "SELECT kind, amount_usd, period FROM credit_ledger WHERE user_id = 'alice'"
            " AND period IN ('2031-11', '2031-12') ORDER BY id"
        )
        outbox = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1 AND key = 'user:bob'::bytea",
            runtime.settings.credit_topic,
        )
    assert not bob_dec["blocked"] and bob_dec["period"] == "2031-12"
    assert bob_dec["spent_usd"] == 0 and bob_dec["seq"] == bob_nov["seq"] + 1
    assert [(e["kind"], e["amount_usd"], e["period"]) for e in entries] == [
        ("grant", Decimal("10.00"), "2031-11"),
        ("debit", Decimal("-4.00"), "2031-11"),
        ("expiry", Decimal("-6.00"), "2031-11"),
        ("grant", Decimal("10.00"), "2031-12"),
    ]
    balance, total = await ledger_check(runtime, "alice")
    assert balance == total
    assert outbox >= 2


async def test_config_change_republishes_state(runtime: Runtime) -> None:
    await runtime.ingestor().ingest([usage(user_id="bob", key_id="k-bob", cost="1.50")])
    producer = Producer(runtime.settings.kafka)
    await producer.start()
    try:
        raise_budget = ConfigEvent(
            revision=100,
            entity="user",
            entity_id="bob",
            op="upsert",
            data={"id": "bob", "tier": "free", "monthly_budget_usd": "5.00"},
        )
        await producer.send(CONFIG.name, raise_budget.to_bytes(), key=raise_budget.key.encode())
    finally:
        await producer.stop()

    async def unblocked() -> bool:
        async with runtime.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT blocked, limit_usd FROM credit_state"
                " WHERE subject_type = 'user' AND subject_id = 'bob'"
            )
        return row is not None and row["limit_usd"] == 5 and not row["blocked"]

    await wait_until(unblocked)
