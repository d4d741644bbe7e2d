"""Reading the append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from turnout_common.db import Where


async def search(
    pool: asyncpg.Pool,
    *,
    filters: dict[str, Any],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    w = Where()
    for col, value in filters.items():
        w.given(f"{col} = ?", value)
    w.given("at >= ?", since)
    w.given("at < ?", until)
    where, args = w.sql, w.args
    async with pool.acquire() as conn:
        total: int = await conn.fetchval(f"SELECT count(*) FROM audit_log{where}", *args)
        rows = await conn.fetch(
            f"SELECT * FROM audit_log{where} ORDER BY id DESC LIMIT {limit} OFFSET {offset}", *args
        )
    return list(rows), total
