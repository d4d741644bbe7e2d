"""The HTTP API: auth scopes, listing, CSV export, summaries vs SQL, credits, lab, ops."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from turnout_metering.app import create_app
from turnout_metering.runtime import Runtime

from .conftest import ADMIN, ALICE_KEY, BOB_KEY, MINTED_ADMIN, usage

ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}
ALICE_H = {"Authorization": f"Bearer {ALICE_KEY}"}
BOB_H = {"Authorization": f"Bearer {BOB_KEY}"}


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
              cost="0.0025", latency_ms=400.0, started_at=day0, source="lab")
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
    assert other.status_code == 403 and "own" in other.json()["error"]["message"]
    assert (await client.get("/api/v1/credits/bob", headers=ALICE_H)).status_code == 403
    assert (await client.get("/api/v1/credits/bob/ledger", headers=ALICE_H)).status_code == 403
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
