"""GET /providers shows the health-worker's latest state (turnout.health.v1), real broker."""

from __future__ import annotations

import asyncio
from typing import Any

from turnout_common.broker import Producer, ensure_topics
from turnout_common.events import HealthEvent
from turnout_common.settings import KafkaSettings
from turnout_common.topics import HEALTH


async def _health_of(client: Any, admin: dict[str, str], ref: str, timeout: float = 30.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            r = await client.get(f"/api/v1/providers/{ref}", headers=admin)
            assert r.status_code == 200
            health = r.json()["health"]
            if health is not None and health["status"] != "healthy":
                return health
            await asyncio.sleep(0.1)


async def test_providers_show_their_latest_health(
    client: Any, admin: dict[str, str], uid: Any, kafka_settings: KafkaSettings
) -> None:
    await ensure_topics(kafka_settings, [HEALTH])
    name = uid("hv")
    r = await client.post("/api/v1/providers", headers=admin, json={"name": name, "kind": "groq"})
    assert r.status_code == 201
    pid = r.json()["id"]
    assert r.json()["health"] is None  # nothing reported yet

    producer = Producer(kafka_settings)
    await producer.start()
    try:
        for ev in (
            HealthEvent(provider_id=pid, status="healthy", latency_ms=12.0),
            HealthEvent(provider_id=pid, deployment_id="dep-1", status="degraded"),
            HealthEvent(
                provider_id=pid,
                status="down",
                circuit="open",
                auto_disabled=True,
                reason="3 probe failures in 60 s",
            ),
        ):
            await producer.send(HEALTH.name, ev.to_bytes(), key=pid.encode())
    finally:
        await producer.stop()

    health = await _health_of(client, admin, name)
    assert health["status"] == "down" and health["circuit"] == "open"
    assert health["auto_disabled"] is True
    assert health["reason"] == "3 probe failures in 60 s"
    assert health["degraded_deployments"] == ["dep-1"]
    listed = (await client.get("/api/v1/providers?limit=500", headers=admin)).json()["data"]
    row = next(p for p in listed if p["id"] == pid)
    assert row["health"]["status"] == "down"
