"""Reading the append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def search(
    pool: asyncpg.Pool,
    *,
    filters: dict[str, Any],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    conds: list[str] = []
    args: list[Any] = []
    for col, value in filters.items():
        if value is not None:
            args.append(value)
            conds.append(f"{col} = ${len(args)}")
    if since is not None:
        args.append(since)
        conds.append(f"at >= ${len(args)}")
    if until is not None:
        args.append(until)
        conds.append(f"at < ${len(args)}")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    async with pool.acquire() as conn:
        total: int = await conn.fetchval(f"SELECT count(*) FROM audit_log{where}", *args)
        rows = await conn.fetch(
            f"SELECT * FROM audit_log{where} ORDER BY id DESC LIMIT {limit} OFFSET {offset}", *args
        )
    return list(rows), total
