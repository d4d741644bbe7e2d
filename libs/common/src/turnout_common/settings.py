"""Settings shared by every service (pydantic-settings, ``TURNOUT_`` prefix).

Settings are built in each app factory (``CommonSettings()``), never at import time.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Kafka client settings. Defaults suit a real cluster; tests and ``turnout up`` shrink them."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_KAFKA_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"
    session_timeout_ms: int = Field(10_000, ge=500)
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    fetch_max_wait_ms: int = Field(500, ge=1)
    linger_ms: int = Field(10, ge=0)
    request_timeout_ms: int = Field(30_000, ge=1_000)
    client_id: str = "turnout"
    # a secured cluster (Strimzi TLS listener, MSK, Confluent Cloud ...)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _security(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"TURNOUT_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "TURNOUT_KAFKA_SASL_MECHANISM, TURNOUT_KAFKA_SASL_USERNAME and "
                "TURNOUT_KAFKA_SASL_PASSWORD"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("TURNOUT_KAFKA_SSL_CERTFILE and _SSL_KEYFILE go together (mTLS)")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"TURNOUT_KAFKA_{name.upper()}: no such file: {path}")
        return self

    def client_options(self) -> dict[str, Any]:
        """``bootstrap_servers`` and the security options every aiokafka client takes."""
        opts: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            ctx = ssl.create_default_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None
            )
            if self.ssl_certfile is not None and self.ssl_keyfile is not None:
                ctx.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile))
            opts["ssl_context"] = ctx
        if self.security_protocol.startswith("SASL_"):
            assert self.sasl_password is not None
            opts["sasl_mechanism"] = self.sasl_mechanism
            opts["sasl_plain_username"] = self.sasl_username
            opts["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return opts


class CommonSettings(BaseSettings):
    """What every Turnout service needs."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore")

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    db_pool_min: int = Field(1, ge=0)
    db_pool_max: int = Field(10, ge=1)
    encryption_keys: SecretStr | None = None
    admin_token: SecretStr | None = None
    log_level: str = "INFO"
    log_json: bool = False
    state_dir: Path = Path(".turnout")
    service_name: str = "turnout"
    host: str = "127.0.0.1"
    router_port: int = 8080
    config_api_port: int = 8081
    health_port: int = 8082
    metering_port: int = 8083
    console_port: int = 8084
    config_url: str = "http://127.0.0.1:8081"
    snapshot_timeout_s: float = Field(10.0, gt=0)
    otel_enabled: bool = False
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    def encryption_key_list(self) -> list[str]:
        """The configured Fernet keys, newest first; empty if none are configured."""
        if self.encryption_keys is None:
            return []
        raw = self.encryption_keys.get_secret_value()
        return [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]

    def tracing_requested(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether to trace (OpenTelemetry): ``TURNOUT_OTEL_ENABLED=true``, or the standard
        variables name an OTLP endpoint (``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``) or a traces
        exporter (``OTEL_TRACES_EXPORTER``, e.g. ``console``). ``OTEL_SDK_DISABLED=true`` and
        ``OTEL_TRACES_EXPORTER=none`` turn it off. Services check this once, at start."""
        env = os.environ if environ is None else environ
        exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or exporters == "none":
            return False
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        return self.otel_enabled or bool(endpoint) or bool(exporters)
