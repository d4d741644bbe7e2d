"""Read side of credits: a user's budget, spend, balance and keys for this period."""

from __future__ import annotations

from decimal import Decimal

from turnout_common.errors import NotFound
from turnout_metering.credits import repository as repo
from turnout_metering.runtime import Runtime
from turnout_metering.schemas import Credits, KeyCredit


async def describe(runtime: Runtime, user_id: str) -> Credits:
    credits, config = runtime.credits, runtime.config
    period = credits.period()
    user = config.users.get(user_id)
    keys = sorted(k.id for k in config.keys.values() if k.user_id == user_id)
    subjects = {("user", user_id)} | {("key", k) for k in keys}
    # one snapshot: an ingest commits spend, balance and ledger together
    async with (
        runtime.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        spent = await repo.spend_for(conn, subjects, period)
        balance = (await repo.balances_for(conn, [user_id])).get(user_id)
        _, _, ledger_sum = await repo.ledger_page(conn, user_id, 0, 0)
        any_spend = await conn.fetchval(
            "SELECT 1 FROM spend WHERE subject_type = 'user' AND subject_id = $1 LIMIT 1", user_id
        )
    if user is None and balance is None and not any_spend:
        raise NotFound(f"unknown user {user_id!r}: no such user in config and no usage")
    state = credits.state(
        ("user", user_id), spent.get(("user", user_id), Decimal(0)), balance, period
    )
    key_states = []
    for key_id in keys:
        ks = credits.state(("key", key_id), spent.get(("key", key_id), Decimal(0)), None, period)
        key_states.append(
            KeyCredit(
                key_id=key_id,
                budget_usd=ks["limit_usd"],
                spent_usd=ks["spent_usd"],
                remaining_usd=ks["remaining_usd"],
                blocked=ks["blocked"],
            )
        )
    return Credits(
        user_id=user_id,
        tier=user.tier if user else None,
        tier_monthly_credits_usd=config.tier_credits(user_id),
        period=period,
        limit_usd=state["limit_usd"],
        spent_usd=state["spent_usd"],
        remaining_usd=state["remaining_usd"],
        balance_usd=balance,
        ledger_balance_usd=ledger_sum,
        ledger_consistent=(balance or Decimal(0)) == ledger_sum,
        blocked=state["blocked"],
        keys=key_states,
    )
