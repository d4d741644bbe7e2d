"""Erasure (issue 20 item 3): one user's personal data leaves the usage rows, the money stays
exact (rollups, log and ledger add up to the same totals), only the privileged function can do
it, and it is audited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from turnout_common.migrations import migrate
from turnout_metering.app import create_app
from turnout_metering.main import migrations
from turnout_metering.runtime import Runtime
from turnout_metering.usage import queries
from turnout_metering.usage.erasure import erase, pseudonym
from turnout_metering.usage.partitions import Partitions
from turnout_metering.usage.queries import UsageFilter
from turnout_metering.usage.repository import write_batch

from .conftest import ADMIN, BOB_KEY, usage
from .test_rollups import FROM_DAILY, MODELS

ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}

TOTALS = {
    "log": "SELECT count(*), sum(cost_usd), sum(coalesce(billed_usd, cost_usd)),"
    " sum(input_tokens), sum(output_tokens) FROM usage_log",
    "rollup": "SELECT sum(requests), sum(cost_usd), sum(billed_usd), sum(input_tokens),"
    " sum(output_tokens), sum(errors) FROM usage_daily",
    "ledger": "SELECT count(*), sum(amount_usd) FROM credit_ledger",
    "balance": "SELECT sum(balance_usd) FROM credit_accounts",
    "spend": "SELECT sum(spent_usd), sum(requests) FROM spend",
}
DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database_url)
    schema = f"metering_erase_{uuid.uuid4().hex[:8]}"
    await migrate(c, schema, migrations())
    await c.execute(f"SET search_path TO {schema}, public")
    try:
        yield c
    finally:
        await c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await c.close()


async def totals(conn: asyncpg.Connection) -> dict[str, tuple[Any, ...]]:
    return {name: tuple(await conn.fetchrow(sql)) for name, sql in TOTALS.items()}


async def meter(conn: asyncpg.Connection, events: list[Any]) -> None:
    schema = await conn.fetchval("SELECT current_schema()")
    parts = Partitions(schema, "month", ahead=0, retention_days=None)
    async with conn.transaction():
        await parts.ensure_for(conn, [e.started_at for e in events], datetime.now(UTC))
        await write_batch(conn, events, period="2026-11")


def traffic(n: int, start: datetime) -> list[Any]:
    events = []
    for i in range(n):
        at = start + timedelta(hours=i)
        events.append(usage(cost="0.000123457", started_at=at, source="alice-laptop",
                            task_type="diary-summary", input_tokens=i))  # fmt: skip
        events.append(usage(user_id="bob", key_id="k-bob", cost="0.5", started_at=at))
        events.append(
            usage(key_id="k-alice-2", cost="0.25", started_at=at, status=502,
                  outcome="upstream_error")
        )  # fmt: skip
    events.append(usage(user_id=None, key_id="k-alice-old", started_at=start))  # key only
    return events


async def holders(conn: asyncpg.Connection, *values: str) -> int:
    """Rows of the log or the rollups that still hold any of ``values`` in any column."""
    found = 0
    for table in ("usage_log", "usage_daily", "usage_daily_models"):
        found += await conn.fetchval(
            f"SELECT count(*) FROM {table} t WHERE EXISTS ("
            " SELECT 1 FROM jsonb_each_text(to_jsonb(t)) e WHERE e.value = ANY($1::text[]))",
            list(values),
        )
    return found


async def test_erasure_replaces_the_personal_data_and_keeps_every_total(
    conn: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    await conn.execute("INSERT INTO credit_accounts (user_id, balance_usd) VALUES ('alice', 20)")
    await meter(conn, traffic(48, DAY))  # two days, prepaid alice gets ledger debits
    before = await totals(conn)
    alice_cost = await conn.fetchval(
        "SELECT sum(cost_usd) FROM usage_daily WHERE user_id = 'alice'"
    )
    personal = ("alice", "k-alice", "k-alice-2", "k-alice-old", "alice-laptop", "diary-summary")
    assert await holders(conn, *personal) > 0

    done = await erase(conn, "alice", ["k-alice-old"], actor="admin:ops", reason="GDPR art. 17")
    after = await totals(conn)
    with capsys.disabled():
        print(f"\nerasure totals before {before}\n               after  {after}")
    assert after == before
    assert await holders(conn, *personal) == 0
    alias = done.subject_alias
    assert alias.startswith("anon-") and alias == await conn.fetchval(
        "SELECT DISTINCT user_id FROM usage_log WHERE user_id LIKE 'anon-%'"
    )
    assert done.usage_rows == 48 * 2 + 1 and done.keys == 3
    assert done.actor == "admin:ops" and done.reason == "GDPR art. 17"
    assert await conn.fetchval(
        "SELECT sum(cost_usd) FROM usage_daily WHERE user_id = $1", alias
    ) == (alice_cost)
    # bob is untouched
    assert await conn.fetchval("SELECT count(*) FROM usage_log WHERE user_id = 'bob'") == 48

    await rollups_agree(conn)

    # later usage of the same user, erased again: same pseudonyms, merged rollup rows
    await meter(conn, traffic(2, DAY + timedelta(hours=1, minutes=30)))
    before = await totals(conn)
    again = await erase(conn, "alice", ["k-alice-old"], actor="admin:ops")
    assert again.subject_alias == alias
    assert await totals(conn) == before
    assert await holders(conn, *personal) == 0
    assert await conn.fetchval("SELECT count(*) FROM usage_erasures") == 2
    await rollups_agree(conn)


async def rollups_agree(conn: asyncpg.Connection) -> None:
    """usage_daily_models is still usage_daily summed without users and keys (the erased
    user's share moved to the pseudonyms' rows), so a count by source from it is exact."""
    assert [dict(r) for r in await conn.fetch(MODELS)] == [
        dict(r) for r in await conn.fetch(FROM_DAILY)
    ]
    sources = [r[0] for r in await conn.fetch("SELECT DISTINCT source FROM usage_log")]
    assert len(sources) >= 3  # api, and the pseudonyms of alice's api and alice-laptop
    for source in [*sources, "alice-laptop"]:
        exact = await conn.fetchval("SELECT count(*) FROM usage_log WHERE source = $1", source)
        assert await queries.count_usage(conn, UsageFilter(source=source), None, None) == exact


async def test_erasures_before_0013_leave_no_source_in_the_models_rollup(
    database_url: str,
) -> None:
    """Migration 0013 fills usage_daily_models again when erasures (by 0009's function, which
    left it alone) came before it."""
    c = await asyncpg.connect(database_url)
    schema = f"metering_erase_{uuid.uuid4().hex[:8]}"
    try:
        before_0013 = [m for m in migrations() if m.version < 13]
        await migrate(c, schema, before_0013)
        await c.execute(f"SET search_path TO {schema}, public")
        await meter(c, traffic(30, DAY))
        await erase(c, "alice", [], actor="admin:ops")
        assert await c.fetchval(
            "SELECT count(*) FROM usage_daily_models WHERE source = 'alice-laptop'"
        )
        await migrate(c, schema, migrations())
        assert await holders(c, "alice-laptop") == 0
        await rollups_agree(c)
    finally:
        await c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await c.close()


async def test_only_the_privileged_function_may_change_rows_and_only_personal_ones(
    conn: asyncpg.Connection,
) -> None:
    await meter(conn, [usage("r1")])
    for statement in (
        "UPDATE usage_log SET user_id = 'x'",
        "DELETE FROM usage_log",
        "TRUNCATE usage_log",
    ):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(statement)
    async with conn.transaction():  # even with the erasure setting: money and deletes refused
        await conn.execute("SET LOCAL turnout.usage_erasure = 'on'")
        for statement in (
            "UPDATE usage_log SET cost_usd = 0",
            "UPDATE usage_log SET user_id = 'x', input_tokens = 0",
            "DELETE FROM usage_log",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                async with conn.transaction():  # a savepoint per attempt
                    await conn.execute(statement)
    # the setting does not outlive the erasure's transaction
    await erase(conn, "alice", [], actor="t")
    for statement in (
        "UPDATE usage_erasures SET actor = 'x'",
        "DELETE FROM usage_erasures",
        "TRUNCATE usage_erasures",
    ):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(statement)
    assert await conn.fetchval("SELECT current_setting('turnout.usage_erasure', true)") in (
        "",
        None,
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("UPDATE usage_log SET user_id = 'x'")


def test_pseudonyms_are_stable_and_keyed() -> None:
    assert pseudonym(b"k1", "user_id", "alice") == pseudonym(b"k1", "user_id", "alice")
    assert pseudonym(b"k1", "user_id", "alice") != pseudonym(b"k2", "user_id", "alice")
    assert pseudonym(b"k1", "user_id", "alice") != pseudonym(b"k1", "key_id", "alice")
    assert len(pseudonym(b"k", "source", "api")) == len("anon-") + 24


async def test_erasure_and_retention_over_the_api(runtime: Runtime) -> None:
    await runtime.ingestor().ingest(
        [usage(user_id="bob", key_id="k-bob", cost="0.125") for _ in range(3)] + [usage()]
    )
    app = create_app(runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metering"
    ) as client:
        summary = "/api/v1/usage/summary?group_by=user"
        before = (await client.get(summary, headers=ADMIN_H)).json()["totals"]
        bob = {"Authorization": f"Bearer {BOB_KEY}"}
        assert (
            await client.post("/api/v1/erasures", headers=bob, json={"user_id": "bob"})
        ).status_code == 403
        for bad in ({"user_id": ""}, {"user_id": "a\nb"}, {"user_id": "bob", "extra": 1}, {}):
            answer = await client.post("/api/v1/erasures", headers=ADMIN_H, json=bad)
            assert answer.status_code == 422, bad
        done = await client.post(
            "/api/v1/erasures", headers=ADMIN_H, json={"user_id": "bob", "reason": "request 42"}
        )
        assert done.status_code == 201, done.text
        body = done.json()
        assert body["usage_rows"] == 3 and body["cost_usd"] == "0.375000000"
        assert body["keys"] == 1 and body["actor"] == "admin:bootstrap"
        assert (await client.get("/api/v1/usage?user_id=bob", headers=ADMIN_H)).json()["total"] == 0
        alias = body["subject_alias"]
        page = (await client.get(f"/api/v1/usage?user_id={alias}", headers=ADMIN_H)).json()
        assert page["total"] == 3 and {r["key_id"] for r in page["data"]} != {"k-bob"}
        assert (await client.get(summary, headers=ADMIN_H)).json()["totals"] == before
        listed = (await client.get("/api/v1/erasures", headers=ADMIN_H)).json()
        assert [e["subject_alias"] for e in listed["data"]] == [alias]
        assert (await client.get("/api/v1/erasures", headers=bob)).status_code == 403

        retention = await client.get("/api/v1/usage/retention", headers=bob)
        assert retention.status_code == 200
        info = retention.json()
        assert info["retention_days"] is None and info["partition"] == "month"
        assert info["partitions"] >= 3  # this month and two ahead
        listing = await client.get("/api/v1/usage", headers=ADMIN_H)
        assert listing.headers["x-turnout-raw-since"] == info["raw_since"].replace("Z", "+00:00")
