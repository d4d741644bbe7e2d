"""One prober at a time: a PostgreSQL session advisory lock held on a dedicated connection.

Every replica calls :meth:`LeaderLease.check` on its tick; whoever holds the lock probes,
the others stand by (they still consume usage and serve the API). If the leader dies, its
connection closes, PostgreSQL releases the lock, and the next replica to try takes over.
"""

from __future__ import annotations

import contextlib
import logging

import asyncpg

from turnout_common.db import advisory_lock_id

log = logging.getLogger(__name__)


def lock_id(schema: str) -> int:
    return advisory_lock_id("health-leader", schema)


class LeaderLease:
    def __init__(self, dsn: str, schema: str) -> None:
        self._dsn = dsn
        self._lock_id = lock_id(schema)
        self._conn: asyncpg.Connection | None = None
        self.is_leader = False

    async def check(self) -> bool:
        """Keep or try to take the lease; returns whether this replica leads now."""
        try:
            if self._conn is None or self._conn.is_closed():
                self.is_leader = False
                self._conn = await asyncpg.connect(self._dsn, timeout=5)
            if self.is_leader:
                await self._conn.fetchval("SELECT 1", timeout=5)
            else:
                self.is_leader = bool(
                    await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id)
                )
                if self.is_leader:
                    log.info("this replica now leads the probing")
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("leader lease lost (%s)", type(exc).__name__)
            await self.release()
        return self.is_leader

    async def release(self) -> None:
        self.is_leader = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
