"""Console settings: where the other services are, and how long a session lasts."""

from __future__ import annotations

from pydantic import Field, SecretStr
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
    console_public_url: str | None = None
    """The console's own URL as browsers reach it; the OIDC redirect URI is built from it."""
    console_oidc_client_id: str | None = None
    console_oidc_client_secret: SecretStr | None = None
    oidc_issuer: str | None = None
    """``TURNOUT_OIDC_ISSUER`` (shared with the services): discovery is fetched from it only."""

    @property
    def console_oidc_enabled(self) -> bool:
        return bool(self.console_oidc_client_id and self.oidc_issuer and self.console_public_url)
