"""Provider alerts on turnout.alerts.v1 (issue 20 item 5): down, recovered and circuit open,
each once per crossing."""

from __future__ import annotations

import asyncio
import uuid

from turnout_common.events import AlertEvent
from turnout_common.follow import TopicFollower
from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import start_fake_openai
from turnout_common.topics import ALERTS
from turnout_health.alerts import transitions
from turnout_health.testing import FAST, Harness, provider_data, wait_until


def kinds(events: list[AlertEvent]) -> list[str]:
    return [e.alert for e in events]


def test_transitions_once_per_crossing() -> None:
    down = ("down", "open", True)
    healthy = ("healthy", "closed", False)
    half = ("unknown", "half_open", True)
    assert kinds(transitions("p1", "gpu", "", healthy, down, "3 failures")) == ["provider_down"]
    assert kinds(transitions("p1", "gpu", "", None, down, "")) == ["provider_down"]
    assert transitions("p1", "gpu", "", down, half, "") == []  # still out, no new alert
    assert transitions("p1", "gpu", "", half, down, "trial failed") == []  # same outage
    assert kinds(transitions("p1", "gpu", "", half, healthy, "trial")) == ["provider_recovered"]
    assert kinds(transitions("p1", "gpu", "", down, healthy, "")) == ["provider_recovered"]
    assert kinds(transitions("p1", "gpu", "", None, ("auth_failed", "closed", False), "401")) == [
        "provider_down"
    ]
    assert transitions("p1", "gpu", "", healthy, ("degraded", "closed", False), "slow") == []
    # a deployment: its circuit
    assert kinds(transitions("p1", "gpu", "d1", healthy, down, "5xx")) == ["circuit_open"]
    assert transitions("p1", "gpu", "d1", down, down, "") == []
    assert transitions("p1", "gpu", "d1", half, down, "") == []
    assert kinds(transitions("p1", "gpu", "d1", half, healthy, "")) == ["provider_recovered"]
    assert kinds(transitions("p1", "gpu", "d1", down, healthy, "")) == ["provider_recovered"]
    alert = transitions("p1", "gpu", "", healthy, down, "3 failures")[0]
    assert alert.key == "provider_down:provider:p1" and alert.severity == "critical"
    assert "provider 'gpu' is down" in alert.summary and alert.details["reason"] == "3 failures"


async def test_a_provider_going_down_and_back_alerts_once_each(
    harness: Harness, kafka_settings: KafkaSettings
) -> None:
    seen: list[AlertEvent] = []

    def on_alert(_: bytes | None, value: bytes | None) -> None:
        if value is not None:
            seen.append(AlertEvent.from_bytes(value))

    follower = TopicFollower(kafka_settings, ALERTS.name, on_alert, from_beginning=False)
    await follower.start()
    follower.start_background()
    fake, server = start_fake_openai("gpu")
    pid = str(uuid.uuid4())
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        server.stop()
        await harness.wait_event(pid, lambda e: e.circuit == "open")
        await asyncio.sleep(FAST["cooldown_s"] * 2)  # failed trials while down: no new alert
        server = LocalServer(fake.app, port=server.port).start()
        await harness.wait_event(pid, lambda e: e.circuit == "closed" and e.status == "healthy"
                                 and e.reason.startswith("trial"))  # fmt: skip
        mine = lambda: [e for e in seen if e.subject_id == pid]  # noqa: E731
        await wait_until(lambda: len(mine()) >= 2, timeout=10)
        assert kinds(mine()) == ["provider_down", "provider_recovered"]
    finally:
        server.stop()
        await follower.stop()
