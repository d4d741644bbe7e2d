"""Budget and credit alerts, decided in the transaction that changed the spend.

A subject (user or key) with a monthly budget crosses 50, 80 and 100 % of it; a user with a
prepaid account runs out of credit. Each crossing is emitted once: ``alert_marks`` keeps, per
subject and period, the highest threshold already announced and whether "exhausted" was, and
the events go to the outbox in the same transaction as the mark. A new period starts from
nothing; a raised budget or a grant re-arms the lower thresholds (no event for going down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from turnout_common.events import AlertEvent
from turnout_common.money import money_str
from turnout_common.outbox import enqueue_many

THRESHOLDS = (50, 80, 100)
Subject = tuple[str, str]


def level_of(spent: Decimal, limit: Decimal | None) -> int:
    """The highest threshold (percent) ``spent`` has reached, 0 if none or no budget."""
    if limit is None or limit <= 0:
        return 0
    reached = [t for t in THRESHOLDS if spent * 100 >= limit * t]
    return max(reached, default=0)


def _budget_alert(state: dict[str, Any], pct: int, user_id: str | None) -> AlertEvent:
    kind, ident = state["subject_type"], state["subject_id"]
    spent, limit = state["spent_usd"], state["limit_usd"]
    return AlertEvent(
        alert="budget_threshold",
        severity="critical" if pct >= 100 else "warning" if pct >= 80 else "info",
        subject_type=kind,
        subject_id=ident,
        user_id=user_id,
        summary=(
            f"{kind} {ident!r} has spent {pct} % of its monthly budget"
            f" (${money_str(spent)} of ${money_str(limit)}, {state['period']})"
        ),
        details={
            "threshold_pct": pct,
            "spent_usd": money_str(spent),
            "limit_usd": money_str(limit),
            "period": state["period"],
        },
    )


def _exhausted_alert(state: dict[str, Any]) -> AlertEvent:
    ident = state["subject_id"]
    return AlertEvent(
        alert="credits_exhausted",
        severity="critical",
        subject_type="user",
        subject_id=ident,
        user_id=ident,
        summary=f"user {ident!r} has no prepaid credit left; its requests are refused",
        details={"balance_usd": money_str(state["balance_usd"]), "period": state["period"]},
    )


async def evaluate(
    conn: asyncpg.Connection,
    states: Sequence[dict[str, Any]],
    user_of: Callable[[Subject], str | None],
) -> list[AlertEvent]:
    """The alerts the new ``states`` cross (and the marks updated), in the caller's
    transaction. ``states`` are CreditService's: subject, period, limit, spent, balance."""
    if not states:
        return []
    rows = await conn.fetch(
        "SELECT subject_type, subject_id, period, level, exhausted FROM alert_marks"
        " WHERE (subject_type, subject_id, period) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))",
        [s["subject_type"] for s in states],
        [s["subject_id"] for s in states],
        [s["period"] for s in states],
    )
    marks = {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}
    alerts: list[AlertEvent] = []
    updates: list[tuple[str, str, str, int, bool]] = []
    for state in states:
        where = (state["subject_type"], state["subject_id"], state["period"])
        old_level, old_exhausted = marks.get(where, (0, False))
        level = level_of(state["spent_usd"], state["limit_usd"])
        balance = state["balance_usd"]
        exhausted = balance is not None and balance <= 0
        user_id = user_of((state["subject_type"], state["subject_id"]))
        alerts += [_budget_alert(state, t, user_id) for t in THRESHOLDS if old_level < t <= level]
        if exhausted and not old_exhausted:
            alerts.append(_exhausted_alert(state))
        if (level, exhausted) != (old_level, old_exhausted):
            updates.append((*where, level, exhausted))
    if updates:
        await conn.executemany(
            "INSERT INTO alert_marks (subject_type, subject_id, period, level, exhausted)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject_type, subject_id, period)"
            " DO UPDATE SET level = EXCLUDED.level, exhausted = EXCLUDED.exhausted,"
            " updated_at = now()",
            updates,
        )
    return alerts


async def publish(
    conn: asyncpg.Connection, schema: str, topic: str, alerts: Iterable[AlertEvent]
) -> int:
    """Put the alerts in the outbox (the caller's transaction)."""
    records = [(a.key.encode(), a.to_bytes()) for a in alerts]
    if records:
        await enqueue_many(conn, schema, topic, records)
    return len(records)


async def counts(conn: asyncpg.Connection, period: str) -> dict[tuple[str, str], int]:
    """Subjects of ``period`` per (subject_type, level) — level 50/80/100 or exhausted."""
    rows = await conn.fetch(
        "SELECT subject_type, level::text AS level, count(*) AS n FROM alert_marks"
        " WHERE period = $1 AND level > 0 GROUP BY 1, 2"
        " UNION ALL SELECT subject_type, 'exhausted', count(*) FROM alert_marks"
        " WHERE period = $1 AND exhausted GROUP BY 1",
        period,
    )
    found = {(t, str(level)): 0 for t in ("user", "key") for level in (*THRESHOLDS, "exhausted")}
    found.update({(r["subject_type"], r["level"]): r["n"] for r in rows})
    return found
