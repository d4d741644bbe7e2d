"""Process entry point: `turnout serve health-worker`."""

from __future__ import annotations

# the CLI (`turnout migrate`) reads these three from every service's main module
from turnout_health.migrations import SCHEMA, USES_OUTBOX, migrations

__all__ = ["SCHEMA", "USES_OUTBOX", "migrations", "serve"]


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    from turnout_common.settings import CommonSettings
    from turnout_common.web import serve as run
    from turnout_health.app import create_app

    settings = CommonSettings(service_name="health-worker")
    run(create_app, settings, port=settings.health_port, service="health-worker")
