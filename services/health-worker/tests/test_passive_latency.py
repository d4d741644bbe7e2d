"""Sustained slow traffic (passive latency) shows as ``degraded``; it never opens the circuit."""

from __future__ import annotations

import asyncio
import re
import uuid

from turnout_common.testing.upstream import start_fake_openai
from turnout_health.testing import ADMIN, Harness, provider_data

H = {"Authorization": f"Bearer {ADMIN}"}
SLOW = r"passive latency: average 5000 ms > 2000 ms over \d+ attempts in the last 5 s"


async def test_slow_traffic_degrades_then_recovers(harness: Harness) -> None:
    _, server = start_fake_openai("slow-traffic")
    pid = str(uuid.uuid4())
    service = harness.app.state.service
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        # successful but slow attempts (5 s > SLOW_MS 2 s), at least PASSIVE_MIN_REQUESTS
        await harness.send_usage(pid, "slow", [200] * 6, latency_ms=5000.0)
        await harness.wait_event(pid, lambda e: e.status == "degraded")
        await harness.wait_event(pid, lambda e: e.status == "degraded", deployment_id="slow")
        degraded = next(e for e in harness.events_for(pid) if e.status == "degraded")
        assert re.fullmatch(SLOW, degraded.reason), degraded.reason
        assert degraded.circuit == "closed" and not degraded.auto_disabled
        assert degraded.latency_ms is not None and degraded.latency_ms > 2000
        r = await harness.client.get("/api/v1/health/providers", headers=H)
        row = next(p for p in r.json()["data"] if p["provider_id"] == pid)
        assert row["status"] == "degraded" and row["circuit"] == "closed"
        assert not row["auto_disabled"] and row["reason"].startswith("passive latency: ")
        # fast probes keep passing, but the status does not flap back and forth
        probes = harness.app.state.worker.prober.probes
        await asyncio.sleep(1.0)
        assert harness.app.state.worker.prober.probes >= probes + 3
        assert [e.status for e in harness.events_for(pid)] == ["healthy", "degraded"]
        # fast traffic on another deployment brings the provider's average back under 2 s
        await harness.send_usage(pid, "fast", [200] * 60, latency_ms=10.0)
        await harness.wait_event(pid, lambda e: e.reason.endswith("ms again"))
        back = harness.events_for(pid)[-1]
        assert back.status == "healthy" and back.circuit == "closed"
        assert re.fullmatch(r"passive latency: average \d+ ms <= 2000 ms again", back.reason)
        # the slow deployment gets no more traffic: healthy once its window (5 s) is empty
        await harness.wait_event(
            pid, lambda e: e.status == "healthy", timeout=15.0, deployment_id="slow"
        )
        seen = [(e.status, e.circuit, e.auto_disabled) for e in harness.events_for(pid, "slow")]
        assert seen == [("degraded", "closed", False), ("healthy", "closed", False)]
        assert harness.events_for(pid, "slow")[-1].reason == (
            "passive latency: no sustained slow traffic in the last 5 s"
        )
        assert harness.events_for(pid, "fast") == []
        assert all(e.circuit == "closed" for e in harness.events_for(pid))
        assert service.runtime(pid).slow is None
    finally:
        server.stop()
