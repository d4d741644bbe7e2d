"""The services and how to run, migrate and reach each one."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    module: str
    port_setting: str
    default_port: int

    def main(self) -> ModuleType:
        return importlib.import_module(f"{self.module}.main")


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("config-api", "turnout_config_api", "config_api_port", 8081),
        ServiceSpec("metering", "turnout_metering", "metering_port", 8083),
        ServiceSpec("health-worker", "turnout_health", "health_port", 8082),
        ServiceSpec("router", "turnout_router", "router_port", 8080),
        ServiceSpec("console", "turnout_console", "console_port", 8084),
    )
}
