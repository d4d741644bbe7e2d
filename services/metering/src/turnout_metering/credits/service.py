"""Budgets and prepaid credit: derive each subject's state, publish it, roll periods over.

A subject's state is published on ``turnout.credit.v1`` (through the outbox, in the caller's
transaction) only when it differs from the last published one, so a batch produces at most
one event per subject, with ``seq`` growing per subject. The same transaction decides the
budget and credit alerts those states cross (``turnout_metering.alerts.budget``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from turnout_common.db import advisory_lock_id
from turnout_common.errors import Conflict
from turnout_common.events import CreditEvent
from turnout_common.outbox import enqueue_many
from turnout_metering import metrics
from turnout_metering.alerts import budget
from turnout_metering.clock import Clock, period_of, previous_period
from turnout_metering.config_state import ConfigState, Subject
from turnout_metering.credits import repository as repo


def matters(old: Any, new: dict[str, Any]) -> bool:
    """Whether ``new`` is worth publishing over ``old`` (the last published state).

    Limit, period and blocked always matter; spend and balance only for a subject that has
    a limit or a prepaid balance (an unlimited subject's spend is not the router's business).
    """
    if old is None:
        return True
    if any(old[f] != new[f] for f in ("period", "limit_usd", "blocked")):
        return True
    if old["lab_quota"] != new.get("lab_quota") or old["lab_blocked"] != new.get(
        "lab_blocked", False
    ):
        return True
    if (old["balance_usd"] is None) != (new["balance_usd"] is None):
        return True
    limited = new["limit_usd"] is not None or new["balance_usd"] is not None
    return limited and any(old[f] != new[f] for f in ("spent_usd", "remaining_usd", "balance_usd"))


@dataclass(eq=False)
class CreditService:
    pool: asyncpg.Pool
    schema: str
    config: ConfigState
    clock: Clock
    credit_topic: str
    alerts_topic: str | None = None
    """where budget and credit alerts go (None: no alerts)"""
    _rolled: str | None = field(default=None, init=False)
    """the period this process saw rolled over last (no lock needed to skip it again)"""

    def __post_init__(self) -> None:
        self._lock_id = advisory_lock_id("rollover", self.schema)

    def period(self) -> str:
        return period_of(self.clock.now())

    def now(self) -> datetime:
        return self.clock.now()

    def user_of(self, subject: Subject) -> str | None:
        kind, ident = subject
        if kind == "user":
            return ident
        key = self.config.keys.get(ident)
        return key.user_id if key else None

    def limit_of(self, subject: Subject) -> Decimal | None:
        kind, ident = subject
        if kind == "user":
            user = self.config.users.get(ident)
            return user.monthly_budget_usd if user else None
        key = self.config.keys.get(ident)
        return key.budget_usd if key else None

    def state(
        self, subject: Subject, spent: Decimal, balance: Decimal | None, period: str
    ) -> dict[str, Any]:
        limit = self.limit_of(subject)
        remaining = None if limit is None else max(Decimal(0), limit - spent)
        blocked = (limit is not None and spent >= limit) or (balance is not None and balance <= 0)
        return {
            "subject_type": subject[0],
            "subject_id": subject[1],
            "period": period,
            "limit_usd": limit,
            "spent_usd": spent,
            "remaining_usd": remaining,
            "balance_usd": balance,
            "blocked": blocked,
        }

    async def refresh(
        self, conn: asyncpg.Connection, subjects: Iterable[Subject], period: str
    ) -> int:
        """Publish the new state of every subject whose state changed (caller's transaction)."""
        wanted = set(subjects)
        if not wanted:
            return 0
        spent = await repo.spend_for(conn, wanted, period)
        users = [i for t, i in wanted if t == "user"]
        balances = await repo.balances_for(conn, users)
        labs = await repo.lab_for(conn, users, period)
        previous = await repo.states_for(conn, wanted)
        changed: list[dict[str, Any]] = []
        for subject in sorted(wanted):
            balance = balances.get(subject[1]) if subject[0] == "user" else None
            new = self.state(subject, spent.get(subject, Decimal(0)), balance, period)
            if subject[0] == "user":
                quota = self.config.lab_quota(subject[1])
                used = labs.get(subject[1], 0)
                new["lab_requests"], new["lab_quota"] = used, quota
                new["lab_blocked"] = quota is not None and used >= quota
            if matters(previous.get(subject), new):
                changed.append(new)
        if not changed:
            return 0
        if self.alerts_topic is not None:
            alerts = await budget.evaluate(conn, changed, self.user_of)
            metrics.ALERTS.labels("metering").inc(
                await budget.publish(conn, self.schema, self.alerts_topic, alerts)
            )
        seqs = await repo.save_states(conn, changed)
        events = [CreditEvent(**new, seq=seq) for new, seq in zip(changed, seqs, strict=True)]
        await enqueue_many(
            conn, self.schema, self.credit_topic, [(e.key.encode(), e.to_bytes()) for e in events]
        )
        metrics.CREDIT_EVENTS.inc(len(events))
        metrics.BLOCKED_EVENTS.inc(sum(1 for e in events if e.blocked))
        return len(changed)

    async def _tier_grant(self, conn: asyncpg.Connection, user_id: str, period: str) -> None:
        credits = self.config.tier_credits(user_id)
        if credits > 0:
            user = self.config.users[user_id]
            await repo.add_entry(
                conn,
                user_id,
                "grant",
                credits,
                period,
                reason=f"tier {user.tier} monthly credits",
                ref=f"tier:{period}",
            )

    async def sync(self, subjects: Iterable[Subject]) -> int:
        """After a config change: grant tier credits due this period, publish changed states."""
        await self.rollover()
        wanted = set(subjects)
        period = self.period()
        async with self.pool.acquire() as conn, conn.transaction():
            for kind, ident in sorted(wanted):
                if kind == "user" and ident in self.config.users:
                    await self._tier_grant(conn, ident, period)
            return await self.refresh(conn, wanted, period)

    async def rollover(self) -> bool:
        """At a new UTC month: expire last month's unused tier credit, grant this month's,
        and publish every subject's state for the new period (spend starts at zero)."""
        period = self.period()
        if self._rolled == period:
            return False
        prev = previous_period(period)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_id)
            if await conn.fetchval("SELECT 1 FROM periods WHERE period = $1", period):
                self._rolled = period
                return False
            for user_id, balance in (await repo.balances_for_all(conn)).items():
                left = min(
                    max(balance, Decimal(0)), await repo.tier_credit_left(conn, user_id, prev)
                )
                if left > 0:
                    await repo.add_entry(
                        conn, user_id, "expiry", -left, prev,
                        reason=f"unused tier credits of {prev}", ref=f"expire:{prev}",
                    )  # fmt: skip
            for user_id in sorted(self.config.users):
                await self._tier_grant(conn, user_id, period)
            subjects: set[Subject] = {("user", u) for u in self.config.users}
            subjects |= {("key", k) for k in self.config.keys}
            subjects |= {
                (r[0], r[1])
                for r in await conn.fetch("SELECT subject_type, subject_id FROM credit_state")
            }
            await self.refresh(conn, subjects, period)
            await conn.execute("INSERT INTO periods (period) VALUES ($1)", period)
        self._rolled = period
        metrics.ROLLOVERS.inc()
        return True

    async def grant(self, user_id: str, amount: Decimal, reason: str, actor: str) -> asyncpg.Record:
        """Add prepaid credit (``amount`` > 0)."""
        return await self._record(user_id, "grant", amount, reason, actor)

    async def adjust(
        self, user_id: str, amount: Decimal, reason: str, actor: str
    ) -> asyncpg.Record:
        """Correct the balance by a signed ``amount``. A negative one may take the balance down
        to zero (which blocks a prepaid user) but not below: only usage already served may
        overdraw an account. Conflict (409) otherwise, nothing recorded."""
        return await self._record(user_id, "adjustment", amount, reason, actor)

    async def _record(
        self,
        user_id: str,
        kind: str,
        amount: Decimal,
        reason: str,
        actor: str,
    ) -> asyncpg.Record:
        """One admin ledger entry, the balance moved and the new credit state published
        (through the outbox), in one transaction. An entry that removes credit may not take
        the balance below zero."""
        period = self.period()
        async with self.pool.acquire() as conn, conn.transaction():
            if amount < 0:
                balance = await repo.lock_balance(conn, user_id)  # no concurrent debit now
                have = balance if balance is not None else Decimal(0)
                if have + amount < 0:
                    shown = "no credit account" if balance is None else f"{balance} USD"
                    raise Conflict(
                        f"a {kind} of {amount} USD would take the balance of {user_id!r}"
                        f" ({shown}) below zero; at most {max(have, Decimal(0))} USD can be"
                        " removed",
                        code="insufficient_balance",
                        param="amount_usd",
                    )
            row = await repo.add_entry(
                conn, user_id, kind, amount, period, reason=reason, actor=actor
            )
            assert row is not None
            await self.refresh(conn, {("user", user_id)}, period)
        return row
