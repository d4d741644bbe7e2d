"""Issue 16, BYOK billing policy: a record's ``billed_usd`` (not its ``cost_usd``) is what
spend, budgets and the prepaid ledger debit; rows, summaries, CSV and CloudEvents carry both;
a record without ``billed_usd`` (an older router) bills its cost."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import httpx

from turnout_metering.app import create_app
from turnout_metering.runtime import Runtime
from turnout_metering.usage.billing import billing_payload

from .conftest import ADMIN, usage


async def test_billed_is_what_is_debited(runtime: Runtime) -> None:
    await runtime.credits.grant("carol", Decimal("5"), "test credit", actor="admin:test")
    byok = usage(user_id="carol", key_id="k-carol", cost="0.004000000", byok=True,
                 billed_usd=Decimal("0.000100000"))  # fmt: skip
    platform = usage(user_id="carol", key_id="k-carol", cost="0.002000000")
    explicit = usage(user_id="carol", key_id="k-carol", cost="0.001", billed_usd=Decimal("0.001"))
    await runtime.ingestor().ingest([byok, platform, explicit])
    await runtime.ingestor().ingest([byok])  # a redelivery changes nothing
    billed = Decimal("0.0001") + Decimal("0.002") + Decimal("0.001")
    async with runtime.pool.acquire() as conn:
        spent = await conn.fetchval(
            "SELECT spent_usd FROM spend WHERE subject_type = 'user' AND subject_id = 'carol'"
        )
        balance = await conn.fetchval(
            "SELECT balance_usd FROM credit_accounts WHERE user_id = 'carol'"
        )
        debits = await conn.fetchval(
            "SELECT sum(amount_usd) FROM credit_ledger WHERE user_id = 'carol' AND kind = 'debit'"
        )
    assert spent == billed and debits == -billed
    assert balance == Decimal(5) - billed  # carol's tier grants no monthly credit

    transport = httpx.ASGITransport(app=create_app(runtime=runtime))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://metering",
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as client:
        await _read_back(client, byok.request_id, platform.request_id, billed)

    data = json.loads(billing_payload(byok))["data"]
    assert (data["cost_usd"], data["billed_usd"], data["byok"]) == (
        "0.004000000",
        "0.000100000",
        True,
    )
    data = json.loads(billing_payload(platform))["data"]
    assert data["billed_usd"] == data["cost_usd"] == "0.002000000"


async def _read_back(client: httpx.AsyncClient, byok: str, platform: str, billed: Decimal) -> None:
    r = await client.get("/api/v1/usage", params={"user_id": "carol"})
    rows = {row["request_id"]: row for row in r.json()["data"]}
    assert (rows[byok]["cost_usd"], rows[byok]["billed_usd"]) == ("0.004000000", "0.000100000")
    assert rows[platform]["billed_usd"] == "0.002000000"
    r = await client.get("/api/v1/usage", params={"user_id": "carol", "format": "csv"})
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert sum(Decimal(row["billed_usd"]) for row in table) == billed
    assert sum(Decimal(row["cost_usd"]) for row in table) == Decimal("0.007")
    r = await client.get("/api/v1/usage/summary", params={"user_id": "carol"})
    totals = r.json()["totals"]
    assert Decimal(totals["cost_usd"]) == Decimal("0.007")
    assert Decimal(totals["billed_usd"]) == billed
