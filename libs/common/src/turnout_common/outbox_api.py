"""``/api/v1/outbox``: see a stuck outbox head and set it aside (admins of each service).

A row the broker never accepts (bigger than its message limit, say) holds every event behind
it. The relay then sends the head alone, logs it, sets ``turnout_outbox_stuck`` and makes the
service not ready after a minute; an admin reads the head here and, if it can never be sent,
sets it aside (the row is kept with the reason; the rows behind it go out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from turnout_common.errors import Conflict, ServiceUnavailable
from turnout_common.outbox import OutboxRelay


class OutboxHead(BaseModel):
    id: int
    topic: str
    payload_bytes: int | None
    created_at: datetime


class OutboxState(BaseModel):
    pending: int
    head: OutboxHead | None
    failing_for_s: float | None = Field(description="how long the head has failed to send")
    last_error: str | None
    stuck: bool


class SetAside(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1, le=2**62, description="the pending row to set aside (the head)")
    reason: str = Field(min_length=1, max_length=500)


def outbox_router(
    get_relay: Callable[[Request], OutboxRelay | None], admin: Callable[..., Any]
) -> APIRouter:
    router = APIRouter(prefix="/api/v1/outbox", tags=["outbox"], dependencies=[Depends(admin)])

    def relay_of(request: Request) -> OutboxRelay:
        relay = get_relay(request)
        if relay is None:
            raise ServiceUnavailable("the outbox relay is not running yet")
        return relay

    @router.get("", response_model=OutboxState)
    async def outbox_state(request: Request) -> OutboxState:
        """Pending rows, the oldest one, and whether it is failing to send."""
        relay = relay_of(request)
        head = await relay.head()
        f = relay.head_failure
        return OutboxState(
            pending=await relay.pending(),
            head=None if head is None else OutboxHead(**head),
            failing_for_s=None if f is None else round(time.monotonic() - f.since, 1),
            last_error=None if f is None else f.error,
            stuck=relay.stuck(),
        )

    @router.post("/set-aside", response_model=OutboxState)
    async def set_aside(request: Request, body: SetAside) -> OutboxState:
        """Set a pending row aside so the rows behind it are published (logged; the row is
        kept with the reason). 409 if the row is not pending."""
        relay = relay_of(request)
        if not await relay.set_aside(body.id, body.reason):
            raise Conflict(f"outbox row {body.id} is not pending")
        return await outbox_state(request)

    return router
