"""``/api/v1/dead-letters``: usage records set aside instead of holding metering (admins)."""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from turnout_metering.deps import AdminDep, PageDep, RuntimeDep
from turnout_metering.usage import dead_letters

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


class DeadLetterOut(BaseModel):
    id: int
    topic: str
    partition: int
    offset: int
    key: str | None
    value_base64: str | None
    reason: str
    created_at: datetime


class DeadLetterPage(BaseModel):
    data: list[DeadLetterOut]
    total: int
    limit: int
    offset: int


@router.get("", response_model=DeadLetterPage)
async def list_dead_letters(
    runtime: RuntimeDep,
    _: AdminDep,
    page: PageDep,
) -> DeadLetterPage:
    """Records metering set aside (newest first), with where they came from on the topic and
    why: unparseable, or refused by the database on their own. Everything behind them was
    metered; ``value_base64`` is the raw record to inspect or re-publish once fixed."""
    async with runtime.pool.acquire() as conn:
        total, rows = await dead_letters.page(conn, page.limit, page.offset)
    data = [
        DeadLetterOut(
            id=r["id"], topic=r["topic"], partition=r["partition"], offset=r["offset"],
            key=None if r["key"] is None else r["key"].decode(errors="replace"),
            value_base64=None if r["value"] is None else base64.b64encode(r["value"]).decode(),
            reason=r["reason"], created_at=r["created_at"],
        )
        for r in rows
    ]  # fmt: skip
    return DeadLetterPage(data=data, total=total, limit=page.limit, offset=page.offset)
