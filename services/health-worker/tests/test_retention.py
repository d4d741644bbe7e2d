"""Probe history stays bounded: old rows and rows beyond N per provider are deleted."""

from __future__ import annotations

from turnout_health import repository
from turnout_health.testing import Harness


async def test_history_is_bounded(harness: Harness) -> None:
    pool = harness.app.state.turnout.pool
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO probe_history (provider_id, at, status, circuit, reason)"
            " SELECT p, now() - make_interval(secs => i), 'healthy', 'closed', ''"
            " FROM unnest(ARRAY['ret-a', 'ret-b']) AS p, generate_series(1, 50) AS i"
        )
        await conn.execute(
            "INSERT INTO probe_history (provider_id, at, status, circuit, reason)"
            " VALUES ('ret-old', now() - interval '10 days', 'down', 'open', '')"
        )
        deleted = await repository.purge_history(conn, max_age_s=7 * 24 * 3600, keep=20)
        counts = dict(
            await conn.fetch(
                "SELECT provider_id, count(*) FROM probe_history"
                " WHERE provider_id LIKE 'ret-%' GROUP BY provider_id"
            )
        )
        newest = await conn.fetchval(
            "SELECT min(at) > now() - interval '21 seconds' FROM probe_history"
            " WHERE provider_id = 'ret-a'"
        )
    assert deleted >= 61
    assert counts == {"ret-a": 20, "ret-b": 20}
    assert newest  # the newest rows were kept
