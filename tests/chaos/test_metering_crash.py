"""Chaos 1: metering is killed with SIGKILL in the middle of 2,000 requests, then restarted.

Its consumer acks offsets only after the DB commit, so whatever it had read but not acked is
delivered again to the new process; the write path is idempotent by request id. Every request
must end up counted exactly once, with the exact tokens the client was told.
"""

from __future__ import annotations

import signal
import time

import pytest

from .conftest import ChaosSystem, Load, assert_counted_once, metric, poll, report

pytestmark = pytest.mark.chaos

TOTAL = 2000


async def test_metering_killed_mid_stream_counts_every_request_once(
    chaos_system: ChaosSystem,
) -> None:
    system = chaos_system
    system.add_upstream("primary")
    system.configure([("primary", 0)])
    started = time.monotonic()
    # every 4th request streams; at most 1,200 start before metering has been killed
    load = Load(
        system.url("router"), system.key, concurrency=8, total=TOTAL, stream_every=4, hold_at=1200
    ).start()

    async def metering_busy() -> bool:
        return bool((await system.usage_stats())["rows"] >= 300)

    await poll(metering_busy, 60, "metering to ingest usage", system.diagnostics)
    metered_at_kill, done_at_kill = (await system.usage_stats())["rows"], load.done
    assert system.kill("metering") == -signal.SIGKILL
    load.release()
    await load.until(1600)
    system.start("metering")  # back while the last requests are still being served
    await load.wait()
    assert load.errors == [], load.errors[:5]
    assert len(load.ok) == TOTAL
    await system.await_ready("metering")
    caught_up_s = await system.wait_metered(TOTAL)
    stats = await assert_counted_once(system, load)
    redelivered = await metric(
        system.url("metering"), "turnout_metering_usage_records_total", 'result="duplicate"'
    )
    report(
        "metering SIGKILL",
        requests=TOTAL,
        streams=load.summary()["streams"],
        errors=len(load.errors),
        metered_at_kill=metered_at_kill,
        served_at_kill=done_at_kill,
        redelivered_duplicates=int(redelivered),
        catch_up_after_load_s=round(caught_up_s, 2),
        input_tokens=stats["input_tokens"],
        output_tokens=stats["output_tokens"],
        wall_s=round(time.monotonic() - started, 1),
    )
