"""The README documents every environment variable the services' settings read."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from turnout_common.settings import CommonSettings, KafkaSettings
from turnout_config_api.settings import ConfigApiSettings
from turnout_health.settings import HealthSettings
from turnout_metering.settings import MeteringSettings
from turnout_router.settings import RouterSettings

README = Path(__file__).resolve().parents[1] / "README.md"
SETTINGS: list[type[BaseSettings]] = [
    CommonSettings,
    KafkaSettings,
    ConfigApiSettings,
    RouterSettings,
    HealthSettings,
    MeteringSettings,
]


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    nested = {n for n, f in cls.model_fields.items() if f.annotation is KafkaSettings}
    return {f"{prefix}{name}".upper() for name in cls.model_fields if name not in nested}


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = sorted(n for cls in SETTINGS for n in env_names(cls) if f"`{n}`" not in text)
    assert not missing, f"document these in README.md (Configuration): {missing}"
