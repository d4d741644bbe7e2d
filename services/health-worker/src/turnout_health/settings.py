"""Health-worker settings (``TURNOUT_HEALTH_`` prefix), built in the app factory."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class HealthSettings(BaseSettings):
    """Probe cadence, circuit-breaker thresholds, passive window and history retention."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_HEALTH_", extra="ignore")

    schema_name: str = "health"
    probe_interval_s: float = Field(15.0, gt=0)
    probe_jitter: float = Field(0.1, ge=0, le=0.5)
    probe_timeout_s: float = Field(5.0, gt=0)
    probe_concurrency: int = Field(8, ge=1)
    slow_ms: float = Field(2000.0, gt=0)
    passive_slow_ms: float = Field(
        30_000.0,
        gt=0,
        description="router attempts averaging slower than this (passive window) mean degraded;"
        " whole non-stream generations count, so it is far above the probe's slow_ms",
    )
    failure_threshold: int = Field(3, ge=2)
    failure_window_s: float = Field(60.0, gt=0)
    cooldown_s: float = Field(30.0, gt=0)
    passive_window_s: float = Field(60.0, gt=0)
    passive_min_requests: int = Field(10, ge=1)
    passive_error_rate: float = Field(0.5, gt=0, le=1)
    passive_flush_s: float = Field(1.0, gt=0)
    usage_group: str = "turnout-health"
    history_max_age_s: float = Field(7 * 24 * 3600.0, gt=0)
    history_keep_per_provider: int = Field(1000, ge=1)
    retention_every_s: float = Field(300.0, gt=0)
    leader_retry_s: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _window_fits_threshold(self) -> HealthSettings:
        if self.failure_window_s < (self.failure_threshold - 1) * self.probe_interval_s:
            raise ValueError(
                "TURNOUT_HEALTH_FAILURE_WINDOW_S must be at least (FAILURE_THRESHOLD - 1) x"
                " PROBE_INTERVAL_S, or probe failures can never open the circuit"
            )
        return self

    @property
    def tick_s(self) -> float:
        """How often the scheduler looks for due work."""
        return max(0.02, min(0.5, self.probe_interval_s / 4))
