"""Webhooks: who gets which alert, and what a delivery looks like on the wire.

A request is ``POST <url>`` with a JSON body: the ``AlertEvent`` itself (``format: json``) or
``{"text": ...}`` that Slack's (and Mattermost's, Rocket.Chat's) incoming webhooks accept
(``format: slack``). Headers: ``x-turnout-event-id``, ``x-turnout-alert``, and with a secret
``x-turnout-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` — the
receiver recomputes it over the raw body and refuses a stale ``t`` (replays).

Only admins configure webhooks (``TURNOUT_ALERT_WEBHOOKS``, ``POST /api/v1/alerts/webhooks``):
no user can make metering call an address of their choosing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from turnout_common.events import AlertEvent, AlertKind

Format = Literal["json", "slack"]
SIGNATURE_HEADER = "x-turnout-signature"
_ICON = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials (use the secret for signatures)")
    if any(ord(c) < 33 for c in url) or len(url) > 2000:
        raise ValueError("must be at most 2000 characters without spaces or control characters")
    return url


class WebhookConfig(BaseModel):
    """One global webhook of ``TURNOUT_ALERT_WEBHOOKS`` (a JSON list of these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, AfterValidator(check_url)]
    secret: SecretStr | None = None
    format: Format = "json"
    alerts: list[AlertKind] | None = Field(None, description="alert kinds to send (all if unset)")

    @property
    def id(self) -> str:
        return "env:" + hashlib.sha256(self.url.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Target:
    """Where one delivery goes, resolved when it is sent."""

    id: str
    url: str
    secret: str | None
    format: Format
    user_id: str | None = None
    alerts: tuple[str, ...] | None = None

    def wants(self, alert: AlertEvent) -> bool:
        if self.alerts is not None and alert.alert not in self.alerts:
            return False
        return self.user_id is None or self.user_id == alert.user_id


def global_targets(configs: list[WebhookConfig]) -> list[Target]:
    return [
        Target(
            c.id,
            c.url,
            c.secret.get_secret_value() if c.secret else None,
            c.format,
            alerts=tuple(c.alerts) if c.alerts is not None else None,
        )
        for c in configs
    ]


def body(alert: AlertEvent, fmt: Format) -> bytes:
    if fmt == "slack":
        icon = _ICON[alert.severity]
        return orjson.dumps({"text": f"{icon} *{alert.alert}* {alert.summary}"})
    return alert.to_bytes()


def sign(secret: str, payload: bytes, now: float | None = None) -> str:
    stamp = int(time.time() if now is None else now)
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return f"t={stamp},v1={mac.hexdigest()}"


def verify(secret: str, payload: bytes, header: str, now: float, tolerance_s: float = 300) -> bool:
    """What a receiver does (``examples/`` and the tests use it)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        stamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - stamp) > tolerance_s:
        return False
    want = sign(secret, payload, stamp).split("v1=", 1)[1]
    return hmac.compare_digest(want, fields.get("v1", ""))


def headers(alert: AlertEvent, target: Target, payload: bytes) -> dict[str, str]:
    out = {
        "content-type": "application/json",
        "user-agent": "turnout-alerts/1",
        "x-turnout-event-id": str(alert.event_id),
        "x-turnout-alert": alert.alert,
    }
    if target.secret:
        out[SIGNATURE_HEADER] = sign(target.secret, payload)
    return out
