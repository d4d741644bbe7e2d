"""SQL for spend, the credit ledger and the last published credit state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from turnout_metering.config_state import Subject


def _split(subjects: Iterable[Subject]) -> tuple[list[str], list[str]]:
    pairs = sorted(subjects)
    return [t for t, _ in pairs], [i for _, i in pairs]


async def spend_for(
    conn: asyncpg.Connection, subjects: Iterable[Subject], period: str
) -> dict[Subject, Decimal]:
    types, ids = _split(subjects)
    rows = await conn.fetch(
        "SELECT subject_type, subject_id, spent_usd FROM spend"
        " WHERE period = $3 AND (subject_type, subject_id) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[]))",
        types,
        ids,
        period,
    )
    return {(r[0], r[1]): r[2] for r in rows}


async def lab_for(conn: asyncpg.Connection, user_ids: Iterable[str], period: str) -> dict[str, int]:
    """Testing-lab requests per user this period."""
    rows = await conn.fetch(
        "SELECT subject_id, lab_requests FROM spend WHERE subject_type = 'user'"
        " AND period = $2 AND subject_id = ANY($1::text[])",
        sorted(user_ids),
        period,
    )
    return {r[0]: int(r[1]) for r in rows}


async def balances_for(conn: asyncpg.Connection, user_ids: Iterable[str]) -> dict[str, Decimal]:
    rows = await conn.fetch(
        "SELECT user_id, balance_usd FROM credit_accounts WHERE user_id = ANY($1::text[])",
        sorted(user_ids),
    )
    return {r[0]: r[1] for r in rows}


async def states_for(
    conn: asyncpg.Connection, subjects: Iterable[Subject]
) -> dict[Subject, asyncpg.Record]:
    types, ids = _split(subjects)
    rows = await conn.fetch(
        "SELECT * FROM credit_state WHERE (subject_type, subject_id) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY 1, 2 FOR UPDATE",
        types,
        ids,
    )
    return {(r["subject_type"], r["subject_id"]): r for r in rows}


async def save_states(conn: asyncpg.Connection, states: Sequence[dict[str, Any]]) -> list[int]:
    """Upsert states; returns each one's new ``seq`` (in input order)."""
    cols = ("subject_type", "subject_id", "period", "limit_usd", "spent_usd", "remaining_usd")
    rows = await conn.fetch(
        "INSERT INTO credit_state AS c (subject_type, subject_id, seq, period, limit_usd,"
        " spent_usd, remaining_usd, balance_usd, blocked, lab_requests, lab_quota, lab_blocked)"
        " SELECT t, i, 1, p, l, s, r, b, x, lr, lq, lb FROM unnest($1::text[], $2::text[],"
        " $3::text[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[], $8::bool[],"
        " $9::bigint[], $10::integer[], $11::bool[])"
        " WITH ORDINALITY AS u(t, i, p, l, s, r, b, x, lr, lq, lb, n) ORDER BY n"
        " ON CONFLICT (subject_type, subject_id) DO UPDATE SET seq = c.seq + 1,"
        " period = EXCLUDED.period, limit_usd = EXCLUDED.limit_usd,"
        " spent_usd = EXCLUDED.spent_usd, remaining_usd = EXCLUDED.remaining_usd,"
        " balance_usd = EXCLUDED.balance_usd, blocked = EXCLUDED.blocked,"
        " lab_requests = EXCLUDED.lab_requests, lab_quota = EXCLUDED.lab_quota,"
        " lab_blocked = EXCLUDED.lab_blocked, updated_at = now()"
        " RETURNING subject_type, subject_id, seq",
        *[[s[c] for s in states] for c in cols],
        [s["balance_usd"] for s in states],
        [s["blocked"] for s in states],
        [s.get("lab_requests", 0) for s in states],
        [s.get("lab_quota") for s in states],
        [s.get("lab_blocked", False) for s in states],
    )
    seqs = {(r[0], r[1]): r[2] for r in rows}
    return [seqs[(s["subject_type"], s["subject_id"])] for s in states]


async def ensure_account(conn: asyncpg.Connection, user_id: str) -> None:
    await conn.execute(
        "INSERT INTO credit_accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id
    )


async def lock_balance(conn: asyncpg.Connection, user_id: str) -> Decimal | None:
    """The user's balance, its account row locked until the transaction ends (None = none)."""
    balance: Decimal | None = await conn.fetchval(
        "SELECT balance_usd FROM credit_accounts WHERE user_id = $1 FOR UPDATE", user_id
    )
    return balance


async def add_entry(
    conn: asyncpg.Connection,
    user_id: str,
    kind: str,
    amount: Decimal,
    period: str,
    *,
    reason: str = "",
    ref: str | None = None,
    actor: str = "system",
) -> asyncpg.Record | None:
    """Append a ledger entry and move the balance; None if ``ref`` was already recorded."""
    await ensure_account(conn, user_id)
    row = await conn.fetchrow(
        "INSERT INTO credit_ledger (user_id, kind, amount_usd, period, reason, ref, actor)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (user_id, kind, ref) WHERE ref IS NOT NULL DO NOTHING RETURNING *",
        user_id,
        kind,
        amount,
        period,
        reason,
        ref,
        actor,
    )
    if row is not None:
        await conn.execute(
            "UPDATE credit_accounts SET balance_usd = balance_usd + $2, updated_at = now()"
            " WHERE user_id = $1",
            user_id,
            amount,
        )
    return row


async def tier_credit_left(conn: asyncpg.Connection, user_id: str, period: str) -> Decimal:
    """Unused tier credit of ``period`` (tier credit is consumed before granted credit)."""
    row = await conn.fetchrow(
        "SELECT coalesce(sum(amount_usd) FILTER (WHERE kind = 'grant' AND ref = $3), 0),"
        " coalesce(-sum(amount_usd) FILTER (WHERE kind = 'debit'), 0)"
        " FROM credit_ledger WHERE user_id = $1 AND period = $2",
        user_id,
        period,
        f"tier:{period}",
    )
    granted, used = (row[0], row[1]) if row else (Decimal(0), Decimal(0))
    left: Decimal = max(Decimal(0), granted - used)
    return left


async def ledger_page(
    conn: asyncpg.Connection, user_id: str, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int, Decimal]:
    rows = await conn.fetch(
        "SELECT * FROM credit_ledger WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        user_id,
        limit,
        offset,
    )
    total, ledger_sum = await conn.fetchrow(
        "SELECT count(*), coalesce(sum(amount_usd), 0) FROM credit_ledger WHERE user_id = $1",
        user_id,
    )
    return list(rows), int(total), ledger_sum


async def balances_for_all(conn: asyncpg.Connection) -> dict[str, Decimal]:
    rows = await conn.fetch("SELECT user_id, balance_usd FROM credit_accounts ORDER BY 1")
    return {r[0]: r[1] for r in rows}
