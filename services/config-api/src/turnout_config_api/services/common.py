"""Small SQL helpers shared by the services."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from pydantic import BaseModel

from turnout_common.errors import NotFound, ValidationFailed


def new_id() -> str:
    return uuid.uuid4().hex


async def update_row(
    conn: asyncpg.Connection,
    table: str,
    where: dict[str, Any],
    changes: dict[str, Any],
    revision: int,
    *,
    touch: bool = True,
) -> asyncpg.Record:
    """``UPDATE table SET changes..., revision WHERE where RETURNING *`` (names are ours)."""
    values: list[Any] = []
    sets: list[str] = []
    for col, val in changes.items():
        values.append(val)
        sets.append(f"{col} = ${len(values)}")
    values.append(revision)
    sets.append(f"revision = ${len(values)}")
    if touch:
        sets.append("updated_at = now()")
    conds = []
    for col, val in where.items():
        values.append(val)
        conds.append(f"{col} = ${len(values)}")
    row = await conn.fetchrow(
        f"UPDATE {table} SET {', '.join(sets)} WHERE {' AND '.join(conds)} RETURNING *", *values
    )
    if row is None:
        raise NotFound(f"{table[:-1]} not found")
    return row


async def insert_row(
    conn: asyncpg.Connection, table: str, values: dict[str, Any]
) -> asyncpg.Record:
    cols = list(values)
    params = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({params}) RETURNING *",
        *values.values(),
    )
    assert row is not None
    return row


def patch_changes(body: BaseModel, not_null: frozenset[str]) -> dict[str, Any]:
    """A PATCH body's fields that were sent: explicit null clears optional fields; it is an
    error for required ones."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    bad = sorted(k for k, v in changes.items() if v is None and k in not_null)
    if bad:
        raise ValidationFailed(f"{', '.join(bad)} cannot be null", param=bad[0])
    return changes


async def tier_exists(conn: asyncpg.Connection, name: str) -> None:
    if not await conn.fetchval("SELECT 1 FROM tiers WHERE name = $1", name):
        tiers = [r["name"] for r in await conn.fetch("SELECT name FROM tiers ORDER BY rank")]
        raise ValidationFailed(
            f"unknown tier {name!r}; known tiers: {', '.join(tiers)}", param="tier"
        )
