"""Upstreams that go down and come back, observed end to end on turnout.health.v1."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid

import pytest

from turnout_common.crypto import KeyRing
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import start_fake_openai
from turnout_health.testing import ENCRYPTION_KEY, FAST, Harness, provider_data, wait_until

INTERVAL, TIMEOUT, N = FAST["probe_interval_s"], FAST["probe_timeout_s"], FAST["failure_threshold"]
# the bound the issue sets, plus the jitter and the trip through outbox relay and broker
DETECTION_BOUND = (INTERVAL * (1 + FAST["probe_jitter"]) + TIMEOUT) * N + 1.0


def states(h: Harness, provider_id: str) -> list[tuple[str, str]]:
    return [(e.status, e.circuit) for e in h.events_for(provider_id)]


async def test_stopped_provider_opens_circuit_and_recovers(harness: Harness) -> None:
    fake, server = start_fake_openai("gpu")
    pid = str(uuid.uuid4())
    await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
    await harness.wait_event(pid, lambda e: e.status == "healthy")

    stopped = time.monotonic()
    server.stop()
    opened = await harness.wait_event(pid, lambda e: e.circuit == "open")
    detection = opened - stopped
    down = next(e for e in harness.events_for(pid) if e.circuit == "open")
    assert down.status == "down" and down.auto_disabled
    assert "3 failures" in down.reason and "connect error" in down.reason
    assert detection < DETECTION_BOUND

    await asyncio.sleep(FAST["cooldown_s"] * 2)  # one failed trial while still down
    restarted = time.monotonic()
    server = LocalServer(fake.app, port=server.port).start()
    try:
        closed = await harness.wait_event(
            pid,
            lambda e: (
                e.circuit == "closed" and e.status == "healthy" and e.reason.startswith("trial")
            ),
        )
    finally:
        server.stop()
    recovery = closed - restarted
    seen = states(harness, pid)
    assert seen[0] == ("healthy", "closed")
    assert seen[1] == ("down", "open")
    assert ("unknown", "half_open") in seen
    assert seen[-1] == ("healthy", "closed")
    assert all(a != b for a, b in itertools.pairwise(seen)), "only changes are published"
    assert not harness.events_for(pid)[-1].auto_disabled
    print(
        f"\nMEASURED detection={detection:.2f}s recovery={recovery:.2f}s"
        f" bound={DETECTION_BOUND:.2f}s"
    )


async def test_one_transient_error_does_not_open_the_circuit(harness: Harness) -> None:
    fake, server = start_fake_openai("flaky")
    pid = str(uuid.uuid4())
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        service = harness.app.state.service
        fake.behaviour.status = 500
        await wait_until(lambda: service.runtime(pid).circuit.failure_count(time.monotonic()) >= 1)
        fake.behaviour.status = 200
        await asyncio.sleep(INTERVAL * 5)
        assert service.runtime(pid).circuit.state == "closed"
        assert states(harness, pid) == [("healthy", "closed")]
        r = await harness.client.get(
            f"/api/v1/health/providers/{pid}/history",
            headers={"Authorization": "Bearer " + "bootstrap-admin-token"},
        )
        statuses = [row["status"] for row in r.json()["data"]]
        assert "down" in statuses and statuses[0] == "healthy"
    finally:
        server.stop()


async def test_401_is_auth_failed_without_flapping(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, server = start_fake_openai("badkey")
    fake.behaviour.api_key = "sk-the-right-key-0000"
    pid = str(uuid.uuid4())
    try:
        await harness.publish_config(
            "provider", pid, provider_data(pid, server.url + "/v1", kind="openai_compatible")
        )
        await harness.wait_event(pid, lambda e: e.status == "auth_failed")
        await asyncio.sleep(INTERVAL * (N + 3))
        assert states(harness, pid) == [("auth_failed", "closed")]
        event = harness.events_for(pid)[0]
        assert "401" in event.reason and not event.auto_disabled
        # the operator fixes the key: it arrives encrypted and is decrypted only to probe
        secret = KeyRing([ENCRYPTION_KEY]).encrypt("sk-the-right-key-0000")
        await harness.publish_config(
            "provider",
            pid,
            provider_data(
                pid, server.url + "/v1", kind="openai_compatible", api_key_encrypted=secret
            ),
        )
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        assert states(harness, pid) == [("auth_failed", "closed"), ("healthy", "closed")]
        assert "sk-the-right-key" not in caplog.text  # never logged, even at DEBUG
    finally:
        server.stop()


async def test_system_provider_is_never_auto_disabled(harness: Harness) -> None:
    _, server = start_fake_openai("system")
    pid = str(uuid.uuid4())
    await harness.publish_config(
        "provider", pid, provider_data(pid, server.url + "/v1", kind="llamacpp", is_system=True)
    )
    await harness.wait_event(pid, lambda e: e.status == "healthy")
    server.stop()
    await harness.wait_event(pid, lambda e: e.circuit == "open")
    assert all(not e.auto_disabled for e in harness.events_for(pid))


async def test_deleted_provider_is_tombstoned(harness: Harness) -> None:
    _fake, server = start_fake_openai("gone")
    pid = str(uuid.uuid4())
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url, kind="ollama"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        await harness.publish_config("provider", pid, None)
        await wait_until(lambda: pid in harness.tombstones)
        assert pid not in harness.app.state.service.runtimes
    finally:
        server.stop()
