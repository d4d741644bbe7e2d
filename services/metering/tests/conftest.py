"""Fixtures: a metering runtime on a fresh schema and fresh topics, fed by a local snapshot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from turnout_common.auth import token_hash
from turnout_common.events import CreditEvent, UsageEvent
from turnout_common.follow import TopicFollower
from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_metering.clock import ManualClock
from turnout_metering.runtime import Runtime
from turnout_metering.settings import MeteringSettings

ADMIN = "admin-test-token-123456"
ALICE_KEY = "tk-alice-secret-000001"
BOB_KEY = "tk-bob-secret-000002"
MINTED_ADMIN = "minted-admin-token-987654"


def entity(revision: int, entity: str, entity_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "revision": revision,
        "entity": entity,
        "entity_id": entity_id,
        "op": "upsert",
        "data": data,
    }


def default_entities() -> list[dict[str, Any]]:
    return [
        entity(1, "tier", "free", {"name": "free", "rank": 0, "monthly_credits_usd": "0"}),
        entity(2, "tier", "pro", {"name": "pro", "rank": 2, "monthly_credits_usd": "10.00"}),
        entity(3, "user", "alice", {"id": "alice", "tier": "pro", "monthly_budget_usd": "50"}),
        entity(4, "user", "bob", {"id": "bob", "tier": "free", "monthly_budget_usd": "1.00"}),
        entity(5, "user", "carol", {"id": "carol", "tier": "free", "monthly_budget_usd": None}),
        entity(
            6,
            "virtual_key",
            "k-alice",
            {
                "id": "k-alice",
                "user_id": "alice",
                "key_hash": token_hash(ALICE_KEY),
                "budget_usd": None,
                "revoked": False,
            },
        ),
        entity(
            7,
            "virtual_key",
            "k-bob",
            {
                "id": "k-bob",
                "user_id": "bob",
                "key_hash": token_hash(BOB_KEY),
                "budget_usd": "0.50",
                "revoked": False,
            },
        ),
        entity(
            8,
            "admin_token",
            "t1",
            {"id": "t1", "name": "ops", "token_hash": token_hash(MINTED_ADMIN), "revoked": False},
        ),
    ]


@pytest.fixture
def snapshot_server() -> Iterator[LocalServer]:
    async def snapshot(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ADMIN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        entities = default_entities()
        return web.json_response({"revision": len(entities), "entities": entities})

    app = web.Application()
    app.router.add_get("/api/v1/snapshot", snapshot)
    with LocalServer(app) as srv:
        yield srv


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def settings(
    database_url: str, kafka_settings: KafkaSettings, snapshot_server: LocalServer
) -> MeteringSettings:
    tag = uuid.uuid4().hex[:8]
    return MeteringSettings(
        database_url=database_url,
        admin_token=ADMIN,
        config_url=snapshot_server.url,
        metering_schema=f"metering_{tag}",
        metering_group=f"turnout-metering-{tag}",
        metering_batch_max=1000,
        metering_poll_timeout_ms=200,
        db_pool_min=1,
        db_pool_max=4,
        usage_topic=f"turnout.test.usage.{tag}",
        credit_topic=f"turnout.test.credit.{tag}",
        billing_topic=f"turnout.test.billing.{tag}",
        kafka=kafka_settings,
    )


@pytest.fixture
async def runtime(settings: MeteringSettings, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = Runtime(settings, clock)
    await rt.start(consume=False)
    try:
        yield rt
    finally:
        await rt.stop()


def usage(
    request_id: str | None = None,
    *,
    user_id: str | None = "alice",
    key_id: str | None = "k-alice",
    cost: str = "0.001",
    started_at: datetime | None = None,
    **kw: Any,
) -> UsageEvent:
    fields: dict[str, Any] = {
        "request_id": request_id or uuid.uuid4().hex,
        "user_id": user_id,
        "key_id": key_id,
        "model": "llama-8b",
        "provider": "gpu-box",
        "provider_id": "p1",
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_usd": Decimal(cost),
        "latency_ms": 120.0,
    }
    if started_at is not None:
        fields["started_at"] = started_at
    fields.update(kw)
    return UsageEvent(**fields)


class CreditWatch:
    """Reads the credit topic from the beginning, keeping every event."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.events: list[CreditEvent] = []
        self._follower = TopicFollower(kafka, topic, self._on, name="credit-watch")

    def _on(self, key: bytes | None, value: bytes | None) -> None:
        if value is not None:
            self.events.append(CreditEvent.model_validate_json(value))

    def latest(self, subject: str) -> CreditEvent | None:
        found = [e for e in self.events if e.key == subject]
        return max(found, key=lambda e: e.seq) if found else None

    async def start(self) -> None:
        await self._follower.start()
        self._follower.start_background()

    async def stop(self) -> None:
        await self._follower.stop()
