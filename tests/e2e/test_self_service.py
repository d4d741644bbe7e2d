"""Issue 16: the end user's self-service walkthrough and the BYOK billing policy, on the whole
system (`turnout up`: router, config-api, metering, health-worker, PostgreSQL, the broker) and
local upstreams.

A user creates a key of their own, adds their own provider key, reads the catalog's prices and
sends requests; the upstream receives the user's key, and metering bills by the tier's
``byok_fee_pct``: a BYOK-served request records ``cost_usd`` at catalog price and ``billed_usd``
= that fee; a platform-served one bills its cost. 1,000 requests mixing both are checked to
the nano-dollar against the prices, the usage rows, the CSV, the CloudEvents, the spend and the
prepaid ledger.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for

NANO = Decimal("0.000000001")
FEE_PCT = Decimal("2.5")
PRICES = {"byok": (Decimal("3.7"), Decimal("11.3")), "platform": (Decimal("0.15"), Decimal("0.6"))}
REQUESTS = 1000


def _cost(inp: int, out: int, prices: tuple[Decimal, Decimal]) -> Decimal:
    return ((inp * prices[0] + out * prices[1]) / 1_000_000).quantize(NANO, ROUND_HALF_UP)


def _billing_events(bootstrap: str, request_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The CloudEvents on turnout.billing.v1 for these request ids."""
    import asyncio

    async def read() -> dict[str, dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        found: dict[str, dict[str, Any]] = {}
        try:
            parts = consumer.partitions_for_topic("turnout.billing.v1") or set()
            if not parts:
                await consumer.topics()
                parts = consumer.partitions_for_topic("turnout.billing.v1") or {0}
            tps = [TopicPartition("turnout.billing.v1", p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            async with asyncio.timeout(60):
                while len(found) < len(request_ids):
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for rec in records:
                            event = json.loads(rec.value)
                            if event["id"] in request_ids:
                                found[event["id"]] = event
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_self_service_walkthrough_and_byok_billing(system: Any) -> None:
    byok_up, platform_up = FakeOpenAI(name="byok-up"), FakeOpenAI(name="platform-up")
    byok_srv, platform_srv = LocalServer(byok_up.app).start(), LocalServer(platform_up.app).start()
    tag = uuid.uuid4().hex[:6]
    cfg, meter, router = (system.url(s) for s in ("config", "metering", "router"))
    admin = system.admin
    user, tier = f"walker-{tag}", f"byok-{tag}"
    byok_model, platform_model = f"own-{tag}", f"house-{tag}"
    try:
        with httpx.Client(base_url=cfg + "/api/v1", headers=admin, timeout=10) as c:
            for method, path, body in (
                ("PUT", f"/tiers/{tier}", {"rank": 0, "byok_fee_pct": str(FEE_PCT)}),
                ("POST", "/providers", {"name": f"cloud-{tag}", "kind": "openai",
                                        "base_url": byok_srv.url + "/v1",
                                        "api_key": "sk-platform-key-0000", "byok_enabled": True}),
                ("POST", "/providers", {"name": f"house-{tag}", "kind": "vllm",
                                        "base_url": platform_srv.url + "/v1"}),
                ("POST", "/models", {"provider": f"cloud-{tag}", "upstream_model": "gpt-x",
                                     "name": byok_model,
                                     "input_price_per_mtok": str(PRICES["byok"][0]),
                                     "output_price_per_mtok": str(PRICES["byok"][1])}),
                ("POST", "/models", {"provider": f"house-{tag}", "upstream_model": "llama",
                                     "name": platform_model,
                                     "input_price_per_mtok": str(PRICES["platform"][0]),
                                     "output_price_per_mtok": str(PRICES["platform"][1])}),
                ("POST", "/users", {"id": user, "tier": tier}),
            ):  # fmt: skip
                r = c.request(method, path, json=body)
                assert r.status_code in (200, 201), r.text
            first = c.post("/keys", json={"user_id": user, "name": "from-admin"}).json()["key"]
        r = httpx.post(
            f"{meter}/api/v1/credits/{user}/grant",
            json={"amount_usd": "100", "reason": "walkthrough"},
            headers=admin,
        )
        assert r.status_code == 201, r.text

        # --- the user, with their own key from here on ---------------------------------------
        me = {"Authorization": f"Bearer {first}"}
        with httpx.Client(base_url=cfg + "/api/v1", headers=me, timeout=10) as c:
            r = c.post("/keys", json={"user_id": user, "name": "laptop"})
            assert r.status_code == 201, r.text
            key = r.json()["key"]
            open_ones = {p["provider_name"] for p in c.get("/byok/providers").json()["data"]}
            assert open_ones == {f"cloud-{tag}"} | (open_ones - {f"house-{tag}"})
            assert f"house-{tag}" not in open_ones
            own_secret = f"sk-walker-own-{tag}-9876"
            r = c.put(f"/users/{user}/provider-keys/cloud-{tag}", json={"api_key": own_secret})
            assert r.status_code == 200 and own_secret not in r.text, r.text
            catalog = c.get("/catalog", params={"search": tag, "sort": "-price"}).json()["data"]
            prices = {m["name"]: m["input_price_per_mtok"] for m in catalog}
            assert prices == {byok_model: "3.7", platform_model: "0.15"}

        auth = {"Authorization": f"Bearer {key}"}

        def ask(model: str, words: int) -> httpx.Response | None:
            body = {"model": model, "messages": [{"role": "user", "content": "w " * words}]}
            r = httpx.post(router + "/v1/chat/completions", json=body, headers=auth, timeout=30)
            return r if r.status_code == 200 else None

        # the router has the config, and then the user's key (its own event), once a request
        # reaches the upstream with it; until then the provider's own key serves
        def with_own_key() -> bool:
            ask(byok_model, 1)
            seen = byok_up.requests[-1:] or [{"headers": {}}]
            return seen[0]["headers"].get("Authorization") == f"Bearer {own_secret}"

        wait_for(with_own_key, timeout=30)
        byok_up.requests.clear()
        platform_up.requests.clear()

        expected: dict[str, tuple[Decimal, Decimal, bool]] = {}
        with httpx.Client(timeout=30) as client:
            for i in range(REQUESTS):
                is_byok = i % 3 != 0
                model = byok_model if is_byok else platform_model
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": "w " * (1 + i % 37)}],
                }
                r = client.post(router + "/v1/chat/completions", json=body, headers=auth)
                assert r.status_code == 200, r.text
                usage = r.json()["usage"]
                cost = _cost(
                    usage["prompt_tokens"], usage["completion_tokens"],
                    PRICES["byok" if is_byok else "platform"],
                )  # fmt: skip
                billed = (cost * FEE_PCT / 100).quantize(NANO, ROUND_HALF_UP) if is_byok else cost
                assert r.headers["x-turnout-cost-usd"] == f"{cost:.9f}"
                assert r.headers["x-turnout-provider"] == (
                    f"cloud-{tag}" if is_byok else f"house-{tag}"
                )
                expected[r.headers["x-request-id"]] = (cost, billed, is_byok)
                # the user has prepaid credit: every answer says what is left of it
                assert Decimal(r.headers["x-turnout-credits-remaining-usd"]) < 100
        # a stream's usage chunk says what it cost (checked against metering's row below)
        stream_body = {
            "model": byok_model,
            "messages": [{"role": "user", "content": "w w w"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        r = httpx.post(router + "/v1/chat/completions", json=stream_body, headers=auth, timeout=30)
        priced = [
            json.loads(line[6:])
            for line in r.text.split("\n\n")
            if line.startswith("data: {") and '"turnout"' in line
        ]
        assert len(priced) == 1, r.text
        streamed = (r.headers["x-request-id"], priced[0]["turnout"])
        assert Decimal(streamed[1]["credits_remaining_usd"]) < 100
        byok_up.requests.pop()  # the stream's own request (not one of the 1,000)
        # every BYOK request reached the upstream with the user's key, never the platform's
        assert {q["headers"]["Authorization"] for q in byok_up.requests} == {f"Bearer {own_secret}"}
        assert len(platform_up.requests) == REQUESTS // 3 + 1

        def usage_rows() -> list[dict[str, str]]:
            r = httpx.get(
                f"{meter}/api/v1/usage",
                params={"user_id": user, "limit": 5000, "format": "csv"},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            return list(csv.DictReader(io.StringIO(r.text)))

        def metered() -> list[dict[str, str]] | None:
            mine = [row for row in usage_rows() if row["request_id"] in expected]
            return mine if len(mine) == REQUESTS else None

        rows = wait_for(metered, timeout=60)
        for row in rows:
            cost, billed, is_byok = expected[row["request_id"]]
            got = (Decimal(row["cost_usd"]), Decimal(row["billed_usd"]), row["byok"] == "True")
            assert got == (cost, billed, is_byok), row
        total_cost = sum((c for c, _, _ in expected.values()), Decimal(0))
        total_billed = sum((b for _, b, _ in expected.values()), Decimal(0))
        byok_cost = sum((c for c, _, byok in expected.values() if byok), Decimal(0))
        assert total_billed < total_cost and byok_cost > 0
        assert sum(Decimal(row["cost_usd"]) for row in rows) == total_cost
        assert sum(Decimal(row["billed_usd"]) for row in rows) == total_billed
        print(
            f"BYOK billing: {REQUESTS} requests, cost_usd {total_cost}, billed_usd {total_billed}"
            f" (BYOK share of cost {byok_cost}, fee {FEE_PCT} %)"
        )
        # one row as JSON, with both amounts
        page = httpx.get(
            f"{meter}/api/v1/usage", params={"user_id": user, "limit": 1}, headers=admin
        ).json()
        assert {"cost_usd", "billed_usd", "byok"} <= set(page["data"][0])

        # the summary, the spend and the prepaid ledger: billed, to the nano-dollar (with the
        # few requests sent while waiting for the config, billed by the same rule)
        every = usage_rows()
        all_cost = sum((Decimal(row["cost_usd"]) for row in every), Decimal(0))
        all_billed = sum((Decimal(row["billed_usd"]) for row in every), Decimal(0))
        for row in every:
            fee = (Decimal(row["cost_usd"]) * FEE_PCT / 100).quantize(NANO, ROUND_HALF_UP)
            mine = fee if row["byok"] == "True" else Decimal(row["cost_usd"])
            assert Decimal(row["billed_usd"]) == mine, row
        row = next(row for row in every if row["request_id"] == streamed[0])
        assert row["cost_usd"] == streamed[1]["cost_usd"]  # measured cost = metering's row
        summary = httpx.get(
            f"{meter}/api/v1/usage/summary", params={"user_id": user}, headers=admin
        ).json()
        assert Decimal(summary["totals"]["cost_usd"]) == all_cost
        assert Decimal(summary["totals"]["billed_usd"]) == all_billed

        def settled() -> dict[str, Any] | None:
            credits = httpx.get(f"{meter}/api/v1/credits/{user}", headers=admin).json()
            return credits if Decimal(credits["spent_usd"]) == all_billed else None

        credits = wait_for(settled, timeout=30)
        assert Decimal(credits["balance_usd"]) == Decimal(100) - all_billed

        # the billing CloudEvents carry both
        events = _billing_events(system.env["TURNOUT_KAFKA_BOOTSTRAP"], set(expected))
        assert len(events) == REQUESTS
        for rid, (cost, billed, _) in expected.items():
            data = events[rid]["data"]
            assert (Decimal(data["cost_usd"]), Decimal(data["billed_usd"])) == (cost, billed)
    finally:
        byok_srv.stop()
        platform_srv.stop()
