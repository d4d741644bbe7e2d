"""The HTTP API: auth scopes, listing, CSV export, summaries vs SQL, credits (grants and
adjustments), curl-style bodies, lab, ops."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from turnout_common.testing.waiting import wait_until
from turnout_metering.app import create_app
from turnout_metering.runtime import Runtime

from .conftest import ADMIN, ALICE_KEY, BOB_KEY, MINTED_ADMIN, CreditWatch, usage

ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}
ALICE_H = {"Authorization": f"Bearer {ALICE_KEY}"}
BOB_H = {"Authorization": f"Bearer {BOB_KEY}"}
ALICE_START = Decimal("9.69999997")  # tier credit 10.00 - 30 x 0.010000001 (the fixture's usage)


async def curl(client: httpx.AsyncClient, path: str, raw: str) -> httpx.Response:
    """POST a body the way ``curl -d`` does: raw JSON sent as a form content type."""
    headers = {**ADMIN_H, "Content-Type": "application/x-www-form-urlencoded"}
    return await client.post(path, headers=headers, content=raw.encode())


async def adjust(
    client: httpx.AsyncClient, user: str, amount: str, reason: str = "correction", **kw: str
) -> httpx.Response:
    headers = kw.get("headers") or ADMIN_H
    body = {"amount_usd": amount, "reason": reason}
    return await client.post(f"/api/v1/credits/{user}/adjust", headers=headers, json=body)


async def balance_of(client: httpx.AsyncClient, user: str) -> Decimal | None:
    credits = (await client.get(f"/api/v1/credits/{user}", headers=ADMIN_H)).json()
    assert credits["ledger_consistent"], credits
    return None if credits["balance_usd"] is None else Decimal(credits["balance_usd"])


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    day1 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    day0 = day1 - timedelta(days=1) if day1.day > 1 else day1
    events = [
        usage(f"a{i}", cost="0.010000001", latency_ms=50.0 + i * 10, started_at=day1)
        for i in range(30)
    ]
    events += [
        usage(f"b{i}", user_id="bob", key_id="k-bob", model="gpt-4o-mini", provider="openai",
              provider_id="p-openai", cost="0.0025", latency_ms=400.0, started_at=day0,
              source="lab")
        for i in range(12)
    ]  # fmt: skip
    events.append(
        usage("err1", user_id="carol", key_id=None, status=502, outcome="upstream_error", cost="0")
    )
    await runtime.ingestor().ingest(events)
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metering") as c:
        yield c


async def test_auth_scopes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/usage")).status_code == 401
    bad = await client.get("/api/v1/usage", headers={"Authorization": "Bearer nope-123456"})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    admin = await client.get("/api/v1/usage", headers=ADMIN_H)
    assert admin.status_code == 200 and admin.json()["total"] == 43
    minted = await client.get("/api/v1/usage", headers={"Authorization": f"Bearer {MINTED_ADMIN}"})
    assert minted.json()["total"] == 43
    own = (await client.get("/api/v1/usage", headers=ALICE_H)).json()
    assert own["total"] == 30 and {r["user_id"] for r in own["data"]} == {"alice"}
    other = await client.get("/api/v1/usage?user_id=bob", headers=ALICE_H)
    # another user's data answers like an unknown user: 404, so ids cannot be probed
    assert other.status_code == 404 and "visible to this key" in other.json()["error"]["message"]
    assert (await client.get("/api/v1/credits/bob", headers=ALICE_H)).status_code == 404
    assert (await client.get("/api/v1/credits/bob/ledger", headers=ALICE_H)).status_code == 404
    unknown = await client.get("/api/v1/credits/nobody-at-all", headers=ALICE_H)
    assert unknown.status_code == 404
    assert (await client.get("/api/v1/credits/bob", headers=BOB_H)).status_code == 200
    grant = await client.post(
        "/api/v1/credits/alice/grant", headers=ALICE_H, json={"amount_usd": "5", "reason": "x"}
    )
    assert grant.status_code == 403


async def test_usage_filters_pagination_and_csv(client: httpx.AsyncClient) -> None:
    page = (
        await client.get("/api/v1/usage?model=gpt-4o-mini&limit=5&offset=10", headers=ADMIN_H)
    ).json()
    assert page["total"] == 12 and len(page["data"]) == 2 and page["offset"] == 10
    errors = (await client.get("/api/v1/usage?status=502", headers=ADMIN_H)).json()
    assert [r["request_id"] for r in errors["data"]] == ["err1"]
    bad = await client.get("/api/v1/usage?limit=0", headers=ADMIN_H)
    assert bad.status_code == 422 and "limit" in bad.json()["error"]["message"]
    resp = await client.get("/api/v1/usage?format=csv&user_id=alice", headers=ADMIN_H)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == 30 and rows[0]["user_id"] == "alice"
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("0.30000003")


@pytest.mark.parametrize("group_by", ["model", "user", "day", "source", "provider"])
async def test_summary_matches_sql(
    client: httpx.AsyncClient, runtime: Runtime, group_by: str
) -> None:
    column = {"user": "user_id", "day": "(started_at AT TIME ZONE 'UTC')::date::text"}.get(
        group_by, group_by
    )
    async with runtime.pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {column} AS k, count(*) AS n, sum(input_tokens) AS i,"
            " sum(output_tokens) AS o, sum(cost_usd) AS c,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50"
            f" FROM usage_log GROUP BY 1"
        )
    want = {r["k"]: r for r in rows}
    got = (await client.get(f"/api/v1/usage/summary?group_by={group_by}", headers=ADMIN_H)).json()
    assert {g["key"] for g in got["data"]} == set(want)
    for g in got["data"]:
        w = want[g["key"]]
        assert (g["requests"], g["input_tokens"], g["output_tokens"]) == (w["n"], w["i"], w["o"])
        assert Decimal(g["cost_usd"]) == w["c"]
        assert abs(g["p50_latency_ms"] - w["p50"]) <= max(50.0, 0.5 * w["p50"])  # bucketed
    assert got["totals"]["requests"] == 43


async def test_provider_filter_by_name_or_id(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """SPEC: names or ids. The log and the daily rollup both keep the two, so either matches
    there (no config needed: metering does not follow providers)."""
    events = [usage(f"g{i}", provider="groq-cloud", provider_id="prov-groq") for i in range(3)]
    await runtime.ingestor().ingest(events)
    for ref in ("groq-cloud", "prov-groq"):
        page = (await client.get(f"/api/v1/usage?provider={ref}", headers=ADMIN_H)).json()
        assert page["total"] == 3, ref
        assert {r["request_id"] for r in page["data"]} == {"g0", "g1", "g2"}
        got = await client.get(
            f"/api/v1/usage/summary?group_by=provider&provider={ref}", headers=ADMIN_H
        )
        assert got.status_code == 200, got.text
        assert [(g["key"], g["requests"]) for g in got.json()["data"]] == [("groq-cloud", 3)]
        assert got.json()["totals"]["requests"] == 3
    # the name case is as before
    page = (await client.get("/api/v1/usage?provider=openai", headers=ADMIN_H)).json()
    assert page["total"] == 12
    got = (await client.get("/api/v1/usage/summary?provider=openai", headers=ADMIN_H)).json()
    assert got["totals"]["requests"] == 12
    # neither a name nor an id: an empty result, as for any filter that matches nothing
    page = await client.get("/api/v1/usage?provider=no-such-provider", headers=ADMIN_H)
    assert page.status_code == 200 and page.json()["total"] == 0
    got = await client.get("/api/v1/usage/summary?provider=no-such-provider", headers=ADMIN_H)
    assert got.status_code == 200 and got.json()["data"] == []


async def test_renamed_provider_by_id_and_by_each_name(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Provider prov-p served as "alpha", was renamed "beta", then a new provider prov-q took
    the name "alpha". By id: all of a provider's usage, whatever its name was then; by name:
    the usage recorded under that name; grouped: prov-p is one row, under its latest name."""
    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    old = [
        usage(f"pa{i}", provider="alpha", provider_id="prov-p", started_at=day) for i in range(3)
    ]
    new = [
        usage(f"pb{i}", provider="beta", provider_id="prov-p", started_at=day + timedelta(hours=2))
        for i in range(2)
    ]
    reused = [
        usage(f"q{i}", provider="alpha", provider_id="prov-q", started_at=day + timedelta(hours=3))
        for i in range(4)
    ]
    # the old name's records arrive last (a late redelivery): the later record's name still wins
    for batch in (new, reused, old):
        await runtime.ingestor().ingest(batch)

    async def requests(query: str) -> tuple[int, int]:
        listed = (await client.get(f"/api/v1/usage?{query}", headers=ADMIN_H)).json()
        got = (await client.get(f"/api/v1/usage/summary?{query}", headers=ADMIN_H)).json()
        return listed["total"], got["totals"]["requests"]

    assert await requests("provider=prov-p") == (5, 5)
    assert await requests("provider=beta") == (2, 2)
    assert await requests("provider=alpha") == (7, 7)  # prov-p's old name and prov-q's name
    assert await requests("provider=prov-q") == (4, 4)
    assert await requests("provider=prov-p&outcome=success&user_id=alice") == (5, 5)

    async def groups(query: str = "") -> list[tuple[str | None, int]]:
        path = f"/api/v1/usage/summary?group_by=provider{query}"
        got = (await client.get(path, headers=ADMIN_H)).json()
        return [(g["key"], g["requests"]) for g in got["data"]]

    assert await groups("&provider=prov-p") == [("beta", 5)]
    assert await groups("&provider=alpha") == [("alpha", 4), ("beta", 3)]
    assert await groups() == [("alpha", 4), ("beta", 5), ("gpu-box", 31), ("openai", 12)]
    lab = (await client.get("/api/v1/lab/stats?group_by=provider", headers=ADMIN_H)).json()
    assert [(g["key"], g["requests"]) for g in lab["data"]] == [("openai", 12)]


async def test_credits_grant_and_ledger(client: httpx.AsyncClient) -> None:
    bad = await client.post(
        "/api/v1/credits/alice/grant", headers=ADMIN_H, json={"amount_usd": "-1", "reason": "x"}
    )
    assert bad.status_code == 422 and "amount_usd" in bad.json()["error"]["message"]
    unknown = await client.post(
        "/api/v1/credits/zed/grant", headers=ADMIN_H, json={"amount_usd": "1", "reason": "x"}
    )
    assert unknown.status_code == 404
    ok = await client.post(
        "/api/v1/credits/alice/grant", headers=ADMIN_H, json={"amount_usd": "2.5", "reason": "gift"}
    )
    assert ok.status_code == 201 and ok.json()["kind"] == "grant"
    credits = (await client.get("/api/v1/credits/alice", headers=ALICE_H)).json()
    # tier credit 10.00 + 2.50 - 30 x 0.010000001
    assert Decimal(credits["balance_usd"]) == Decimal("12.19999997")
    assert credits["ledger_consistent"] and credits["ledger_balance_usd"] == credits["balance_usd"]
    assert Decimal(credits["spent_usd"]) == Decimal("0.30000003")
    assert Decimal(credits["remaining_usd"]) == Decimal("49.69999997")
    ledger = (await client.get("/api/v1/credits/alice/ledger", headers=ADMIN_H)).json()
    assert ledger["total"] == 3
    assert sum(Decimal(e["amount_usd"]) for e in ledger["data"]) == Decimal(credits["balance_usd"])
    bob = (await client.get("/api/v1/credits/bob", headers=ADMIN_H)).json()
    assert bob["balance_usd"] is None and bob["keys"][0]["key_id"] == "k-bob"
    assert (await client.get("/api/v1/credits/nobody", headers=ADMIN_H)).status_code == 404


async def test_lab_and_ops(client: httpx.AsyncClient, runtime: Runtime) -> None:
    assert (await client.get("/readyz")).status_code == 503  # consumer not running yet
    await runtime.start_consumer()
    history = (await client.get("/api/v1/lab/history", headers=ADMIN_H)).json()
    assert history["total"] == 12 and {r["source"] for r in history["data"]} == {"lab"}
    stats = (await client.get("/api/v1/lab/stats", headers=BOB_H)).json()
    assert stats["totals"]["requests"] == 12 and stats["data"][0]["key"] == "gpt-4o-mini"
    assert (await client.get("/api/v1/lab/history", headers=ALICE_H)).json()["total"] == 0
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    metrics = (await client.get("/metrics")).text
    assert "turnout_metering_usage_records_total" in metrics
    samples = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    names_labels = {(name, dict(labels).get("service")) for name, labels in samples}
    assert "# TYPE turnout_consumer_lag gauge" in metrics  # samples once a poll returned
    assert ("turnout_http_requests_total", "metering") in names_labels
    models = {dict(labels).get("gen_ai_request_model") for name, labels in samples}
    assert "gpt-4o-mini" in models


async def test_adjustments_move_balance_ledger_and_credit_event(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    watch = CreditWatch(runtime.settings.kafka, runtime.settings.credit_topic)
    await watch.start()
    try:
        assert await balance_of(client, "alice") == ALICE_START
        up = await curl(
            client,
            "/api/v1/credits/alice/adjust",
            '{"amount_usd": "1.25", "reason": "  refund for the 502 outage  "}',
        )
        assert up.status_code == 201, up.text
        entry = up.json()
        assert entry["kind"] == "adjustment" and Decimal(entry["amount_usd"]) == Decimal("1.25")
        assert (
            entry["reason"] == "refund for the 502 outage" and entry["actor"] == "admin:bootstrap"
        )
        assert await balance_of(client, "alice") == ALICE_START + Decimal("1.25")

        down = await adjust(client, "alice", "-0.94999997", "duplicate grant in March")
        assert down.status_code == 201, down.text
        assert Decimal(down.json()["amount_usd"]) == Decimal("-0.94999997")
        assert await balance_of(client, "alice") == Decimal(10)
        await wait_until(lambda: (e := watch.latest("user:alice")) and e.balance_usd == 10)
        event = watch.latest("user:alice")
        assert event is not None and not event.blocked and event.remaining_usd is not None

        # removing more than is left is refused, and nothing is recorded
        over = await adjust(client, "alice", "-10.000000001")
        assert over.status_code == 409, over.text
        error = over.json()["error"]
        assert error["code"] == "insufficient_balance" and error["param"] == "amount_usd"
        assert "below zero" in error["message"] and "10.000000000 USD" in error["message"]
        assert await balance_of(client, "alice") == Decimal(10)

        # down to exactly zero is allowed, and blocks her like a spent balance does
        zero = await adjust(client, "alice", "-10", "account closed")
        assert zero.status_code == 201, zero.text
        assert await balance_of(client, "alice") == 0
        await wait_until(lambda: (e := watch.latest("user:alice")) and e.blocked)
        event = watch.latest("user:alice")
        assert event is not None and event.balance_usd == 0
    finally:
        await watch.stop()

    ledger = (await client.get("/api/v1/credits/alice/ledger", headers=ALICE_H)).json()
    rows = [(e["kind"], Decimal(e["amount_usd"]), e["reason"]) for e in ledger["data"][:3]]
    assert rows == [
        ("adjustment", Decimal("-10"), "account closed"),
        ("adjustment", Decimal("-0.94999997"), "duplicate grant in March"),
        ("adjustment", Decimal("1.25"), "refund for the 502 outage"),
    ]
    assert ledger["total"] == 5  # tier grant + usage debit + 3 adjustments
    assert Decimal(ledger["balance_usd"]) == Decimal(ledger["ledger_balance_usd"]) == 0


async def test_adjustment_creates_an_account_but_never_an_overdraft(
    client: httpx.AsyncClient,
) -> None:
    assert await balance_of(client, "bob") is None  # free tier: no credit account
    refused = await adjust(client, "bob", "-1")
    assert refused.status_code == 409 and "no credit account" in refused.json()["error"]["message"]
    assert await balance_of(client, "bob") is None
    assert (await adjust(client, "bob", "3")).status_code == 201
    assert await balance_of(client, "bob") == 3
    # concurrent removals are serialised on the account: never below zero
    results = await asyncio.gather(*(adjust(client, "bob", "-1.1") for _ in range(4)))
    assert sorted(r.status_code for r in results) == [201, 201, 409, 409]
    assert await balance_of(client, "bob") == Decimal("0.8")


async def test_adjustment_is_admin_only_and_validated(client: httpx.AsyncClient) -> None:
    path = "/api/v1/credits/alice/adjust"
    for who in (ALICE_H, BOB_H):
        denied = await adjust(client, "alice", "5", headers=who)
        assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    assert (await client.post(path, json={"amount_usd": "5", "reason": "x"})).status_code == 401
    cases = [
        ({"amount_usd": "0", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "-0.000", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "1"}, "reason"),
        ({"amount_usd": "1", "reason": "   "}, "reason"),
        ({"amount_usd": "0.0000000001", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "1000000.01", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "1", "reason": "x", "kind": "grant"}, "kind"),
    ]
    for body, param in cases:
        bad = await client.post(path, headers=ADMIN_H, json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["error"]["param"] == param, (body, bad.text)
    unknown = await adjust(client, "zed", "1")
    assert unknown.status_code == 404 and "zed" in unknown.json()["error"]["message"]
    assert await balance_of(client, "alice") == ALICE_START  # nothing recorded


async def test_curl_style_bodies_are_read_as_json(client: httpx.AsyncClient) -> None:
    ok = await curl(client, "/api/v1/credits/alice/grant", '{"amount_usd":5,"reason":"curl"}')
    assert ok.status_code == 201, ok.text
    assert ok.json()["kind"] == "grant" and ok.headers["x-request-id"]
    assert await balance_of(client, "alice") == ALICE_START + 5
    broken = await curl(client, "/api/v1/credits/alice/grant", "amount_usd=5&reason=form")
    assert broken.status_code == 422 and broken.json()["error"]["type"] == "invalid_request_error"
    assert await balance_of(client, "alice") == ALICE_START + 5
