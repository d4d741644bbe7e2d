"""``/api/v1/alerts``: per-user webhooks and the deliveries of alerts (admins only).

Global webhooks come from ``TURNOUT_ALERT_WEBHOOKS``; these are added at run time, for one
user's alerts (``user_id``) or all of them. Only an admin sets a URL metering will call.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from turnout_common.errors import NotFound
from turnout_common.events import AlertKind
from turnout_metering.alerts import repository
from turnout_metering.alerts.webhooks import Format, check_url
from turnout_metering.deps import AdminDep, PageDep, RuntimeDep

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, AfterValidator(check_url)]
    user_id: str | None = Field(
        None, min_length=1, max_length=200, description="only this user's alerts (all if unset)"
    )
    secret: str | None = Field(
        None, min_length=16, max_length=200, description="HMAC key (one is made if unset)"
    )
    format: Format = "json"
    alerts: list[AlertKind] | None = Field(None, description="alert kinds to send (all if unset)")


class WebhookOut(BaseModel):
    id: str
    user_id: str | None
    url: str
    format: Format
    alerts: list[AlertKind] | None
    created_by: str
    created_at: datetime
    secret: str | None = Field(None, description="only in the answer to the POST, once")


class WebhookList(BaseModel):
    data: list[WebhookOut]
    total: int
    limit: int
    offset: int


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    webhook: str
    alert: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    next_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    total: int
    limit: int
    offset: int


def _webhook(row: Any, secret: str | None = None) -> WebhookOut:
    return WebhookOut(**dict(row), secret=secret)


@router.get("/webhooks", response_model=WebhookList)
async def list_webhooks(runtime: RuntimeDep, _: AdminDep) -> WebhookList:
    """Webhooks added through the API (secrets never shown), then the global ones of
    ``TURNOUT_ALERT_WEBHOOKS`` (id ``env:…``, read-only)."""
    async with runtime.pool.acquire() as conn:
        rows = [_webhook(r) for r in await repository.list_webhooks(conn)]
    for c in runtime.settings.alert_webhooks:
        rows.append(
            WebhookOut(
                id=c.id,
                user_id=None,
                url=c.url,
                format=c.format,
                alerts=c.alerts,
                created_by="env:TURNOUT_ALERT_WEBHOOKS",
                created_at=datetime.fromtimestamp(0).astimezone(),
            )
        )
    return WebhookList(data=rows, total=len(rows), limit=len(rows), offset=0)


@router.post("/webhooks", response_model=WebhookOut, status_code=201)
async def add_webhook(body: WebhookIn, runtime: RuntimeDep, principal: AdminDep) -> WebhookOut:
    """Add a webhook; the answer holds its signing secret (yours, or a new one) this once."""
    secret = body.secret or secrets.token_urlsafe(32)
    async with runtime.pool.acquire() as conn:
        row = await repository.add_webhook(
            conn, user_id=body.user_id, url=body.url, secret=secret, fmt=body.format,
            alerts=body.alerts, actor=f"{principal.kind}:{principal.subject}",
        )  # fmt: skip
    return _webhook(row, secret)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, runtime: RuntimeDep, _: AdminDep) -> Response:
    """Remove a webhook added through the API; its pending deliveries become dead letters."""
    async with runtime.pool.acquire() as conn:
        if not await repository.delete_webhook(conn, webhook_id):
            raise NotFound(f"no webhook {webhook_id!r} (global ones are set by environment)")
    return Response(status_code=204)


@router.get("/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    runtime: RuntimeDep,
    _: AdminDep,
    page: PageDep,
    state: Literal["pending", "delivered", "dead"] | None = None,
) -> DeliveryPage:
    """Alert deliveries, newest first; ``state=dead`` lists the dead letters (every retry
    failed, or the webhook was removed), with the last status and error."""
    async with runtime.pool.acquire() as conn:
        total, rows = await repository.page(conn, state, page.limit, page.offset)
    data = [DeliveryOut(**{**r, "event_id": str(r["event_id"])}) for r in rows]
    return DeliveryPage(data=data, total=total, limit=page.limit, offset=page.offset)
