"""``/api/v1/credits/{user}``: budget and balance, grants and adjustments, the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query

from turnout_common.auth import Principal
from turnout_common.errors import NotFound
from turnout_common.web import MAX_OFFSET
from turnout_metering.credits import repository as credit_repo
from turnout_metering.credits.queries import describe
from turnout_metering.deps import AdminDep, PrincipalDep, RuntimeDep, scoped_user
from turnout_metering.runtime import Runtime
from turnout_metering.schemas import AdjustmentIn, Credits, GrantIn, LedgerEntry, LedgerPage

router = APIRouter(prefix="/api/v1/credits", tags=["credits"])
UserPath = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/{user_id}", response_model=Credits)
async def get_credits(runtime: RuntimeDep, principal: PrincipalDep, user_id: UserPath) -> Credits:
    """Monthly budget, spend this period, remaining, prepaid balance (checked against the
    ledger) and the user's keys."""
    scoped_user(principal, user_id)
    return await describe(runtime, user_id)


def _known_user(runtime: Runtime, user_id: str) -> str:
    if user_id not in runtime.config.users:
        raise NotFound(f"unknown user {user_id!r}: create it in config-api first")
    return user_id


def _actor(admin: Principal) -> str:
    return f"{admin.kind}:{admin.subject}"


@router.post("/{user_id}/grant", response_model=LedgerEntry, status_code=201)
async def grant(
    runtime: RuntimeDep, admin: AdminDep, user_id: UserPath, body: GrantIn
) -> LedgerEntry:
    """Add prepaid credit (a ledger entry) and publish the user's new credit state."""
    row = await runtime.credits.grant(
        _known_user(runtime, user_id), body.amount_usd, body.reason, actor=_actor(admin)
    )
    return LedgerEntry.model_validate(dict(row))


@router.post("/{user_id}/adjust", response_model=LedgerEntry, status_code=201)
async def adjust(
    runtime: RuntimeDep, admin: AdminDep, user_id: UserPath, body: AdjustmentIn
) -> LedgerEntry:
    """Correct prepaid credit by a signed amount (an ``adjustment`` ledger entry with its
    reason) and publish the user's new credit state; 409 if it would go below zero."""
    row = await runtime.credits.adjust(
        _known_user(runtime, user_id), body.amount_usd, body.reason, actor=_actor(admin)
    )
    return LedgerEntry.model_validate(dict(row))


@router.get("/{user_id}/ledger", response_model=LedgerPage)
async def get_ledger(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    user_id: UserPath,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> LedgerPage:
    """Ledger entries, newest first, with the stored balance and the sum of all entries."""
    scoped_user(principal, user_id)
    async with (
        runtime.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        rows, total, ledger_sum = await credit_repo.ledger_page(conn, user_id, limit, offset)
        balance = (await credit_repo.balances_for(conn, [user_id])).get(user_id)
    return LedgerPage(
        user_id=user_id,
        data=[LedgerEntry.model_validate(dict(r)) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        balance_usd=balance,
        ledger_balance_usd=ledger_sum if total else Decimal(0),
    )
