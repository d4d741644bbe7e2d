"""Console settings: where the other services are, and how long a session lasts."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from turnout_common.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    """``TURNOUT_`` prefix like every service; the console-only ones start ``TURNOUT_CONSOLE_``."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore")

    service_name: str = "console"
    router_url: str = "http://127.0.0.1:8080"
    metering_url: str = "http://127.0.0.1:8083"
    health_url: str = "http://127.0.0.1:8082"
    console_session_ttl_s: float = Field(8 * 3600.0, gt=0)
    console_api_timeout_s: float = Field(15.0, gt=0)
