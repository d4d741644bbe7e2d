"""Chaos 3: the primary upstream server is killed (SIGKILL) under load.

``chaos-chat`` has two deployments: on ``primary`` (priority 0) and on ``secondary``
(priority 10). Requests in flight on the primary when it dies, and every request after, must
fall back to the secondary before the first byte reaches the client: no client-visible error
for non-streaming requests, and the fallback is in the response headers and in metering.
"""

from __future__ import annotations

import time

import pytest

from .conftest import ChaosSystem, Load, assert_counted_once, report

pytestmark = pytest.mark.chaos


async def test_primary_upstream_killed_falls_back_without_errors(
    chaos_system: ChaosSystem,
) -> None:
    system = chaos_system
    system.add_upstream("primary", delay_ms=20)
    system.add_upstream("secondary", delay_ms=20)
    system.configure([("primary", 0), ("secondary", 10)])
    started = time.monotonic()
    load = Load(system.url("router"), system.key, concurrency=8, total=2000, hold_at=400).start()
    await load.until(400)
    assert {o.provider for o in load.ok} == {"primary"}, load.summary()
    load.release()
    await load.until(600)  # requests are in flight on the primary right now
    killed_after = load.started
    system.upstreams["primary"].kill()
    await load.wait()

    assert load.errors == [], load.errors[:5]
    assert len(load.ok) == 2000
    after_kill = [o for o in load.ok if o.index > killed_after]
    assert after_kill and {o.provider for o in after_kill} == {"secondary"}
    fell_back = [o for o in load.ok if o.fallbacks]
    assert fell_back and {o.provider for o in fell_back} == {"secondary"}
    await system.wait_metered(len(load.ok))
    await assert_counted_once(system, load)
    rows = {r["request_id"]: r for r in await system.usage_rows()}
    assert all(rows[o.request_id]["provider"] == o.provider for o in load.ok)
    assert all(rows[o.request_id]["fallbacks"] == o.fallbacks for o in load.ok)
    summary = load.summary()
    report(
        "primary upstream SIGKILL",
        requests=len(load.ok),
        errors=len(load.errors),
        served_by=summary["providers"],
        fell_back=summary["fell_back"],
        started_before_kill=killed_after,
        wall_s=round(time.monotonic() - started, 1),
    )
