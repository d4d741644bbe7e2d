"""config-api settings (``TURNOUT_`` prefix), built in the app factory."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from turnout_common.oidc import OidcSettings
from turnout_common.settings import CommonSettings


class ConfigApiSettings(CommonSettings, OidcSettings):
    """Common settings plus OIDC (optional SSO, ``TURNOUT_OIDC_*``) and probe timeouts."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore")

    service_name: str = "config-api"
    probe_timeout_s: float = Field(10.0, gt=0)
    run_migrations: bool = True
    outbox_poll_interval_s: float = Field(1.0, gt=0)
    self_service_keys: bool = Field(
        True, description="users may create and revoke their own virtual keys"
    )
    key_tests_per_minute: int = Field(
        10, gt=0, le=10_000, description="key-test calls a user may make per minute (seed 002)"
    )
