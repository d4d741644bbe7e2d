"""config-api settings (``TURNOUT_`` prefix), built in the app factory."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from turnout_common.settings import CommonSettings


class ConfigApiSettings(CommonSettings):
    """Common settings plus OIDC (optional SSO) and probe timeouts."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore")

    service_name: str = "config-api"
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_role_claim: str = "roles"
    oidc_admin_role: str = "admin"
    probe_timeout_s: float = Field(10.0, gt=0)
    run_migrations: bool = True
    outbox_poll_interval_s: float = Field(1.0, gt=0)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_jwks_url)
