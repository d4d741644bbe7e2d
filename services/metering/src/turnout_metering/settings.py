"""Metering settings (``TURNOUT_`` prefix), built in the app factory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from turnout_common.settings import CommonSettings
from turnout_common.topics import ALERTS, BILLING, CREDIT, USAGE
from turnout_metering.alerts.webhooks import WebhookConfig


class MeteringSettings(CommonSettings):
    service_name: str = "metering"
    metering_schema: str = "metering"
    metering_group: str = "turnout-metering"
    metering_batch_max: int = Field(5000, ge=1, le=50_000)
    metering_poll_timeout_ms: int = Field(500, ge=1)
    metering_period_check_s: float = Field(30.0, gt=0)
    metering_stuck_s: float = Field(120.0, gt=0)
    """Not ready when behind and no offset was committed for this long."""
    usage_topic: str = USAGE.name
    credit_topic: str = CREDIT.name
    billing_topic: str = BILLING.name
    alerts_topic: str = ALERTS.name
    # usage_log partitions and retention (turnout_metering.usage.partitions)
    usage_partition: Literal["month", "day"] = "month"
    usage_partitions_ahead: int = Field(2, ge=0, le=400)
    usage_retention_days: int | None = Field(None, ge=1)
    """Raw usage rows older than this are dropped, whole partitions at a time (None: kept)."""
    usage_maintenance_s: float = Field(3600.0, gt=0)
    # erasure (turnout_metering.usage.erasure)
    erasure_key: SecretStr | None = None
    # alerts (turnout_metering.alerts)
    alert_webhooks: list[WebhookConfig] = Field(default_factory=list)
    alert_group: str = "turnout-metering-alerts"
    alert_metering_lag_max: int = Field(10_000, ge=1)
    alert_lag_check_s: float = Field(15.0, gt=0)
    alert_delivery_attempts: int = Field(6, ge=1, le=50)
    alert_delivery_backoff_s: float = Field(2.0, gt=0)
    alert_delivery_timeout_s: float = Field(5.0, gt=0)
