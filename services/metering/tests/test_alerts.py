"""Alerts end to end (issue 20 item 5): budget crossings found while metering go through the
outbox onto turnout.alerts.v1, and metering's webhook delivery POSTs them to real local HTTP
receivers — signed, in JSON or Slack form, retried with backoff (a receiver that fails at
first gets each alert on its third try), dead-lettered after the last try, and once per
crossing. A provider alert published by another service is delivered the same way.

Everything is real: PostgreSQL, the broker, aiohttp receivers on local ports."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from turnout_common.broker import Producer
from turnout_common.events import AlertEvent
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.waiting import wait_until
from turnout_metering.alerts import budget
from turnout_metering.alerts.lag import LagWatch
from turnout_metering.alerts.webhooks import SIGNATURE_HEADER, WebhookConfig, verify
from turnout_metering.app import create_app
from turnout_metering.clock import ManualClock
from turnout_metering.runtime import Runtime
from turnout_metering.settings import MeteringSettings

from .conftest import ADMIN, BOB_KEY, usage

ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}
SECRET = "receiver-secret-0123456789"


@dataclass
class Receiver:
    """A webhook receiver: answers the first ``fail_first`` tries of each alert with 500 (or
    every try with ``always_fail``: 503), keeps every request it gets and its answer."""

    fail_first: int = 0
    always_fail: bool = False
    got: list[tuple[float, dict[str, str], bytes, int]] = field(default_factory=list)
    server: LocalServer | None = None

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            raw = await request.read()
            event = request.headers.get("x-turnout-event-id", "")
            tries = 1 + sum(1 for _, h, _, _ in self.got if h.get("x-turnout-event-id") == event)
            status = 503 if self.always_fail else 500 if tries <= self.fail_first else 204
            self.got.append((time.monotonic(), dict(request.headers), raw, status))
            return web.Response(status=status)

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/hook"

    def ok(self) -> list[tuple[dict[str, str], bytes]]:
        """Requests it accepted."""
        return [(h, b) for _, h, b, status in self.got if status < 300]

    def alerts(self) -> list[AlertEvent]:
        return [AlertEvent.from_bytes(b) for _, b in self.ok()]


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {
        "json": Receiver(),
        "flaky_slack": Receiver(fail_first=2),
        "dead": Receiver(always_fail=True),
        "bob": Receiver(),
        "alice": Receiver(),
    }
    for r in made.values():
        r.server = LocalServer(r.app()).start()
    try:
        yield made
    finally:
        for r in made.values():
            assert r.server is not None
            r.server.stop()


@pytest.fixture
async def alert_runtime(
    settings: MeteringSettings, clock: ManualClock, receivers: dict[str, Receiver]
) -> AsyncIterator[Runtime]:
    tag = uuid.uuid4().hex[:8]
    hooks = [
        WebhookConfig.model_validate({"url": receivers["json"].url, "secret": SECRET}),
        WebhookConfig(url=receivers["flaky_slack"].url, format="slack"),
        WebhookConfig(url=receivers["dead"].url, alerts=["budget_threshold"]),
    ]
    s = settings.model_copy(
        update={
            "alerts_topic": f"turnout.test.alerts.{tag}",
            "alert_group": f"turnout-alerts-{tag}",
            "alert_webhooks": hooks,
            "alert_delivery_attempts": 3,
            "alert_delivery_backoff_s": 0.2,
            "alert_delivery_timeout_s": 2.0,
        }
    )
    rt = Runtime(s, clock)
    await rt.start(consume=False)
    try:
        yield rt
    finally:
        await rt.stop()


def show(name: str, r: Receiver) -> str:
    lines = [f"  {name}: {len(r.got)} requests, {len(r.ok())} accepted"]
    start = min((at for at, _, _, _ in r.got), default=0.0)
    for at, headers, raw, status in r.got:
        body = orjson.loads(raw)
        what = body.get("text") or f"{body['alert']} {body['subject_type']}:{body['subject_id']}"
        signed = "signed" if SIGNATURE_HEADER in headers else "unsigned"
        lines.append(f"    +{at - start:5.2f}s {status} {signed} {what}")
    return "\n".join(lines)


async def test_budget_alerts_reach_webhooks_once_per_crossing(
    alert_runtime: Runtime, receivers: dict[str, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    rt = alert_runtime
    app = create_app(runtime=rt)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metering") as client:
        # per-user webhooks (admins only; a user's key cannot add one)
        for user in ("bob", "alice"):
            answer = await client.post(
                "/api/v1/alerts/webhooks", headers=ADMIN_H,
                json={"url": receivers[user].url, "user_id": user},
            )  # fmt: skip
            assert answer.status_code == 201, answer.text
            assert len(answer.json()["secret"]) >= 32
        denied = await client.post(
            "/api/v1/alerts/webhooks", headers={"Authorization": f"Bearer {BOB_KEY}"},
            json={"url": "http://169.254.169.254/latest"},
        )  # fmt: skip
        assert denied.status_code == 403
        bad = await client.post(
            "/api/v1/alerts/webhooks", headers=ADMIN_H, json={"url": "file:///etc/passwd"}
        )
        assert bad.status_code == 422
        listed = (await client.get("/api/v1/alerts/webhooks", headers=ADMIN_H)).json()
        assert listed["total"] == 5 and all("secret" not in h or h["secret"] is None
                                            for h in listed["data"])  # fmt: skip

        # bob's key k-bob has a $0.50 budget, bob himself $1.00 (conftest)
        ing = rt.ingestor()
        await ing.ingest([usage(user_id="bob", key_id="k-bob", cost="0.30")])  # key 60 %
        await ing.ingest([usage(user_id="bob", key_id="k-bob", cost="0.15")])  # key 90 %
        await ing.ingest([usage(user_id="bob", key_id="k-bob", cost="0.10")])  # 110 %, user 55 %
        await ing.ingest([usage(user_id="bob", key_id="k-bob", cost="0.01")])  # nothing crossed
        await ing.ingest([usage(cost="0.01")])  # alice: no budget crossed
        # a provider alert, as the health-worker publishes it
        down = AlertEvent(
            alert="provider_down",
            severity="critical",
            subject_type="provider",
            subject_id="p1",
            summary="provider 'gpu-box' is down, circuit open",
        )
        producer = Producer(rt.settings.kafka)
        await producer.start()
        try:
            await producer.send(rt.settings.alerts_topic, down.to_bytes(), key=down.key.encode())
        finally:
            await producer.stop()

        expected = {
            ("budget_threshold", "key", "k-bob", 50),
            ("budget_threshold", "key", "k-bob", 80),
            ("budget_threshold", "key", "k-bob", 100),
            ("budget_threshold", "user", "bob", 50),
        }

        def seen(r: Receiver) -> set[tuple[Any, ...]]:
            return {
                (a.alert, a.subject_type, a.subject_id, a.details.get("threshold_pct"))
                for a in r.alerts()
            }

        everything = expected | {("provider_down", "provider", "p1", None)}
        await wait_until(lambda: seen(receivers["json"]) == everything, timeout=30)
        await wait_until(lambda: len(receivers["flaky_slack"].ok()) == 5, timeout=30)
        await wait_until(lambda: seen(receivers["bob"]) == expected, timeout=30)

        async def dead() -> list[dict[str, Any]]:
            page = await client.get(
                "/api/v1/alerts/deliveries", params={"state": "dead"}, headers=ADMIN_H
            )
            return list(page.json()["data"])

        dead_rows: list[dict[str, Any]] = []

        async def all_dead() -> bool:
            dead_rows[:] = await dead()
            return len(dead_rows) == 4

        await wait_until_async(all_dead, timeout=30)
        with capsys.disabled():
            print("\nwebhook receivers:")
            for name, r in receivers.items():
                print(show(name, r))

    # what the Prometheus rules read (turnout_metering_budget_subjects): the highest level
    async with rt.pool.acquire() as conn:
        found = await budget.counts(conn, rt.credits.period())
    assert found[("key", "100")] == 1 and found[("key", "80")] == 0
    assert found[("user", "50")] == 1 and found[("user", "exhausted")] == 0
    # once per crossing: nothing more arrives
    assert len(receivers["json"].got) == 5
    assert receivers["alice"].got == []  # alice crossed nothing, bob's alerts are not hers
    # JSON form: the AlertEvent, signed with the webhook's secret
    for headers, raw in receivers["json"].ok():
        assert verify(SECRET, raw, headers[SIGNATURE_HEADER], now=time.time())
        assert not verify("another-secret-0000000", raw, headers[SIGNATURE_HEADER], time.time())
        assert headers["x-turnout-event-id"] == str(AlertEvent.from_bytes(raw).event_id)
    by_subject = {
        (a.subject_id, a.details.get("threshold_pct")): a for a in receivers["json"].alerts()
    }
    assert by_subject[("k-bob", 100)].severity == "critical"
    assert by_subject[("k-bob", 100)].user_id == "bob"
    assert by_subject[("bob", 50)].details["limit_usd"] == "1.00"
    # the flaky receiver: Slack form, each alert delivered on its third try, after backoffs
    # of 0.2 s and 0.4 s (so at least 0.6 s after the first try)
    flaky = receivers["flaky_slack"]
    texts = [orjson.loads(b)["text"] for _, b in flaky.ok()]
    assert any("k-bob" in t and "100 %" in t for t in texts)
    assert len(flaky.got) == 5 * 3
    for event in {h["x-turnout-event-id"] for _, h, _, _ in flaky.got}:
        tries = [(at, st) for at, h, _, st in flaky.got if h["x-turnout-event-id"] == event]
        assert [st for _, st in tries] == [500, 500, 204]
        assert tries[2][0] - tries[0][0] >= 0.6
    assert SIGNATURE_HEADER not in flaky.got[0][1]  # no secret set, no signature
    # the receiver that always fails: 3 attempts each, then a dead letter (budget alerts only)
    assert len(receivers["dead"].got) == 4 * 3
    assert {r["alert"] for r in dead_rows} == {"budget_threshold"}
    assert all(r["attempts"] == 3 and r["last_status"] == 503 for r in dead_rows)


async def wait_until_async(predicate: Any, timeout: float) -> None:
    import asyncio

    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


def test_lag_alert_once_per_crossing() -> None:
    watch = LagWatch(limit=100)
    assert watch.check(50) is None
    alert = watch.check(150)
    assert alert is not None and alert.alert == "metering_lag" and alert.details["lag"] == 150
    assert watch.check(5000) is None  # still above: no new alert
    assert watch.check(100) is None  # back at the limit: armed again
    assert watch.check(101) is not None


async def test_credits_exhausted_once_until_a_grant_rearms_it(runtime: Runtime) -> None:
    """alice (pro tier: $10 of monthly credit) runs out: one credits_exhausted alert, none for
    more usage while out, another after a grant and running out again."""

    async def alerts() -> list[AlertEvent]:
        async with runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT payload FROM outbox WHERE topic = $1 ORDER BY id",
                runtime.settings.alerts_topic,
            )
        return [AlertEvent.from_bytes(r["payload"]) for r in rows]

    ing = runtime.ingestor()
    await ing.ingest([usage(cost="9.5")])
    assert [a.alert for a in await alerts()] == []
    await ing.ingest([usage(cost="0.75")])  # balance -0.25
    await ing.ingest([usage(cost="0.01")])  # still out: nothing new
    found = await alerts()
    assert [(a.alert, a.subject_id, a.user_id) for a in found] == [
        ("credits_exhausted", "alice", "alice")
    ]
    assert found[0].details["balance_usd"] == "-0.250000000"  # when it crossed
    await runtime.credits.grant("alice", Decimal("1"), "top-up", "admin:test")
    await ing.ingest([usage(cost="0.80")])
    assert [a.alert for a in await alerts()] == ["credits_exhausted"] * 2
