"""``/api/v1/erasures``: erase one user's personal data from the usage rows (admins).

The one documented exception to usage_log being append-only (migration 0009,
``turnout_metering.usage.erasure``): the user id, the user's key ids, ``source`` and
``task_type`` become stable pseudonyms; money, tokens and times stay, so every total adds up
as before. Audited in ``usage_erasures`` under the pseudonym (never the erased id).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from turnout_common.money import Money
from turnout_metering.deps import AdminDep, PageDep, RuntimeDep
from turnout_metering.usage import erasure

router = APIRouter(prefix="/api/v1/erasures", tags=["erasure"])

_ID = r"^[^\x00-\x1f\x7f]+$"


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=200, pattern=_ID)
    key_ids: list[Annotated[str, Field(min_length=1, max_length=200, pattern=_ID)]] = Field(
        default_factory=list,
        max_length=1000,
        description="key ids of the user besides those config knows and those in its rows"
        " (e.g. keys deleted long ago)",
    )
    reason: str = Field("", max_length=500)


class ErasureOut(BaseModel):
    id: int
    subject_alias: str = Field(description="the user's pseudonym in the rows from now on")
    keys: int
    usage_rows: int
    rollup_rows: int
    cost_usd: Money
    actor: str
    reason: str
    created_at: datetime


class ErasurePage(BaseModel):
    data: list[ErasureOut]
    total: int
    limit: int
    offset: int


def _out(e: erasure.Erasure) -> ErasureOut:
    return ErasureOut(
        id=e.id, subject_alias=e.subject_alias, keys=e.keys, usage_rows=e.usage_rows,
        rollup_rows=e.rollup_rows, cost_usd=Decimal(e.cost_usd), actor=e.actor,
        reason=e.reason, created_at=e.created_at,
    )  # fmt: skip


@router.post("", response_model=ErasureOut, status_code=201)
async def erase_user(body: ErasureIn, runtime: RuntimeDep, principal: AdminDep) -> ErasureOut:
    """Replace the user's id, its keys' ids, ``source`` and ``task_type`` in every usage row
    and rollup row by stable pseudonyms (``anon-…``, HMAC-SHA256). Totals are unchanged; the
    credit ledger and spend per period (the user's account) are kept. Idempotent: erasing
    again gives the same pseudonyms and changes what was metered since."""
    known = [k.id for k in runtime.config.keys.values() if k.user_id == body.user_id]
    key = runtime.settings.erasure_key
    async with runtime.pool.acquire() as conn:
        done = await erasure.erase(
            conn,
            body.user_id,
            [*known, *body.key_ids],
            actor=f"{principal.kind}:{principal.subject}",
            reason=body.reason,
            configured_key=key.get_secret_value() if key else None,
        )
    return _out(done)


@router.get("", response_model=ErasurePage)
async def list_erasures(
    runtime: RuntimeDep,
    _: AdminDep,
    page: PageDep,
) -> ErasurePage:
    """The erasures done (newest first), under the pseudonyms."""
    async with runtime.pool.acquire() as conn:
        total, rows = await erasure.history(conn, page.limit, page.offset)
    return ErasurePage(
        data=[_out(e) for e in rows], total=total, limit=page.limit, offset=page.offset
    )
