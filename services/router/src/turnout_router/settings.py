"""Router settings (``TURNOUT_`` prefix), built in the app factory, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from turnout_common.settings import CommonSettings


class RouterSettings(CommonSettings):
    """Everything the data plane needs on top of :class:`CommonSettings`."""

    service_name: str = "turnout-router"
    router_server: Literal["embedded", "workers"] = "embedded"

    # upstream behaviour
    request_timeout_s: float = Field(600.0, gt=0, description="total time per request")
    ttft_timeout_s: float = Field(60.0, gt=0, description="time to the first upstream byte")
    connect_timeout_s: float = Field(5.0, gt=0)
    max_attempts: int = Field(6, ge=1, description="upstream attempts per request, in all")
    retry_rounds: int = Field(1, ge=0, description="extra passes over the chain after 429/5xx")
    retry_backoff_s: float = Field(0.1, ge=0, description="base of the jittered backoff")
    retry_after_max_s: float = Field(2.0, ge=0, description="longest Retry-After we honour")
    upstream_pool_size: int = Field(1024, ge=1)
    request_log: bool = Field(False, description="log one line per request")
    inflight_journal: bool = Field(
        True, description="journal requests in flight so a crashed router's are metered"
    )
    max_body_mb: float = Field(32.0, gt=0, description="larger request bodies get 413")
    half_open_trial_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="share of requests that try a half-open provider/deployment first",
    )

    # power levels: max price per million tokens (the larger of input/output price); the
    # seeds' POWER_LEVELS (eco 0.50, balanced 5.00, precision 100.00 USD)
    eco_max_price_per_mtok: float = Field(0.5, ge=0)
    balanced_max_price_per_mtok: float = Field(5.0, ge=0)
    precision_max_price_per_mtok: float = Field(100.0, ge=0)
    # ... and max provider latency (the health-worker's latest probe; None = no limit)
    eco_max_latency_ms: float | None = Field(10_000.0, gt=0)
    balanced_max_latency_ms: float | None = Field(5_000.0, gt=0)
    precision_max_latency_ms: float | None = Field(2_000.0, gt=0)

    # shared rate limits and budget reservations (turnout_router.shared); unset: per replica
    redis_url: str | None = Field(None, description="redis:// or rediss:// URL (or Valkey)")
    redis_prefix: str = Field("turnout:", max_length=64, description="prefix of every key")
    redis_timeout_ms: float = Field(250.0, gt=0, description="connect / answer timeout")
    redis_retry_s: float = Field(1.0, gt=0, description="ping interval while unreachable")

    # defaults when a key / provider sets none (None = unlimited)
    default_output_tokens: int = Field(256, ge=1, description="budget estimate w/o max_tokens")

    # followers: a floor for their fetch wait (Tansu answers a waiting fetch only after it;
    # three followers polling every 20 ms cost a few % of the core for nothing)
    follow_fetch_min_wait_ms: int = Field(400, ge=1)

    # usage emitter
    usage_flush_interval_ms: int = Field(50, ge=1)
    usage_batch_max: int = Field(2000, ge=1)
    usage_send_timeout_s: float = Field(3.0, gt=0)
    usage_replay_interval_s: float = Field(1.0, gt=0)
    # acknowledged usage kept to re-send if the broker loses its log (0 turns it off)
    usage_resend_window_s: float = Field(10.0, ge=0)
    usage_resend_max_mb: float = Field(8.0, ge=0)
    usage_topic: str = "turnout.usage.v1"

    def latency_caps(self) -> dict[str, float]:
        caps = {
            "eco": self.eco_max_latency_ms,
            "balanced": self.balanced_max_latency_ms,
            "precision": self.precision_max_latency_ms,
        }
        return {level: cap for level, cap in caps.items() if cap is not None}

    def price_caps(self) -> dict[str, float]:
        return {
            "eco": self.eco_max_price_per_mtok,
            "balanced": self.balanced_max_price_per_mtok,
            "precision": self.precision_max_price_per_mtok,
        }

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "router-spool"
