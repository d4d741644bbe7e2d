"""Records set aside: what could not be metered, with where it came from and why.

A record is set aside when it cannot be parsed as a usage event, or when the database
refuses it on its own (a *data* error: SQLSTATE classes 22 data exception, 23 integrity
violation, 54 program limit — found by splitting the batch that failed). Anything else
(database down, deadlock) is not the record's fault: the batch is retried as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

DATA_ERROR_CLASSES = ("22", "23", "54")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record came from on the topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    origin: Origin
    reason: str


def is_data_error(exc: BaseException) -> bool:
    """True when the database refused the data itself (retrying it can never succeed)."""
    if isinstance(exc, UnicodeError | ValueError | OverflowError):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and str(state)[:2] in DATA_ERROR_CLASSES


def describe(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    text = f"{type(exc).__name__}: {exc}"[:500]
    return f"[{state}] {text}" if state else text


async def insert(conn: asyncpg.Connection, letters: Sequence[DeadLetter]) -> None:
    """Keep them (idempotent: a redelivered record is set aside once)."""
    if not letters:
        return
    await conn.executemany(
        """INSERT INTO dead_letters (topic, partition, "offset", key, value, reason)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (topic, partition, "offset") DO NOTHING""",
        [
            (d.origin.topic, d.origin.partition, d.origin.offset, d.origin.key,
             d.origin.value, d.reason.replace("\x00", "\\u0000"))
            for d in letters
        ],
    )  # fmt: skip


async def page(conn: asyncpg.Connection, limit: int, offset: int) -> tuple[int, list[Any]]:
    total = await conn.fetchval("SELECT count(*) FROM dead_letters")
    rows = await conn.fetch(
        """SELECT id, topic, partition, "offset", key, value, reason, created_at
           FROM dead_letters ORDER BY id DESC LIMIT $1 OFFSET $2""",
        limit,
        offset,
    )
    return int(total), list(rows)
