"""Metering settings (``TURNOUT_`` prefix), built in the app factory."""

from __future__ import annotations

from pydantic import Field

from turnout_common.settings import CommonSettings
from turnout_common.topics import BILLING, CREDIT, USAGE


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
