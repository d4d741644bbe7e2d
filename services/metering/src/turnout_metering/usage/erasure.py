"""Erasure of one user's personal data from the usage rows (the exception to append-only).

The user id, the ids of the user's keys, and the request metadata the rows carry (``source``,
``task_type``) are replaced by stable pseudonyms: ``anon-`` and the first 24 hex digits of
HMAC-SHA256(key, "<column>:<value>"), so the same value always gets the same pseudonym (a second
erasure of the same user merges into the first) and the rows still group and add up. The key
is ``TURNOUT_ERASURE_KEY`` or, if unset, one made once per schema and kept in the database.

The work is the SQL function ``erase_usage_subject()``, one transaction: the log rows (only
the personal columns may change, the trigger checks it), the daily rollup rows (moved to the
pseudonyms, merged) and the audit row in ``usage_erasures`` (migration 0009), then the rows
of ``usage_daily_models`` on the user's days and models summed again from ``usage_daily``,
so no erased source stays there either (migration 0013).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

PERSONAL = ("user_id", "key_id", "source", "task_type")


def pseudonym(key: bytes, column: str, value: str) -> str:
    digest = hmac.new(key, f"{column}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"anon-{digest[:24]}"


async def secret_key(conn: asyncpg.Connection, configured: str | None) -> bytes:
    """The HMAC key: the configured one, else this schema's own (made on first use)."""
    if configured:
        return configured.encode()
    await conn.execute(
        "INSERT INTO erasure_secret (secret) VALUES ($1) ON CONFLICT (id) DO NOTHING",
        secrets.token_hex(32),
    )
    stored: str = await conn.fetchval("SELECT secret FROM erasure_secret")
    return stored.encode()


@dataclass(frozen=True, slots=True)
class Erasure:
    id: int
    subject_alias: str
    keys: int
    usage_rows: int
    rollup_rows: int
    cost_usd: Any
    actor: str
    reason: str
    created_at: Any


async def _values(
    conn: asyncpg.Connection, user_id: str, key_ids: list[str]
) -> dict[str, set[str]]:
    """Every personal value the user's log and rollup rows hold."""
    found: dict[str, set[str]] = {c: set() for c in PERSONAL}
    found["user_id"].add(user_id)
    found["key_id"].update(key_ids)
    rows = await conn.fetch(
        "SELECT DISTINCT key_id, source, task_type FROM usage_log"
        " WHERE user_id = $1 OR key_id = ANY($2::text[])"
        " UNION SELECT DISTINCT nullif(key_id, ''), source, NULL FROM usage_daily"
        " WHERE user_id = $1 OR key_id = ANY($2::text[])",
        user_id,
        key_ids,
    )
    for r in rows:
        for column in ("key_id", "source", "task_type"):
            if r[column] is not None:
                found[column].add(r[column])
    return found


async def erase(
    conn: asyncpg.Connection,
    user_id: str,
    key_ids: Iterable[str],
    *,
    actor: str,
    reason: str = "",
    configured_key: str | None = None,
) -> Erasure:
    """Erase ``user_id`` (and ``key_ids``, the user's keys) from the usage rows; audited."""
    keys = sorted(set(key_ids))
    async with conn.transaction():
        secret = await secret_key(conn, configured_key)
        values = await _values(conn, user_id, keys)
        keys = sorted(values["key_id"])
        aliases = {
            column: {v: pseudonym(secret, column, v) for v in sorted(vals)}
            for column, vals in values.items()
        }
        audit_id = await conn.fetchval(
            "SELECT erase_usage_subject($1, $2::text[], $3::text::jsonb, $4, $5)",
            user_id,
            keys,
            orjson.dumps(aliases).decode(),
            actor,
            reason,
        )
        row = await conn.fetchrow("SELECT * FROM usage_erasures WHERE id = $1", audit_id)
    return Erasure(**dict(row))


async def history(conn: asyncpg.Connection, limit: int, offset: int) -> tuple[int, list[Erasure]]:
    total = await conn.fetchval("SELECT count(*) FROM usage_erasures")
    rows = await conn.fetch(
        "SELECT * FROM usage_erasures ORDER BY id DESC LIMIT $1 OFFSET $2", limit, offset
    )
    return int(total), [Erasure(**dict(r)) for r in rows]
