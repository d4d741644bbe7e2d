"""Process entry point: `turnout serve config-api`."""

from __future__ import annotations

# the CLI (`turnout migrate`) reads these three from every service's main module
from turnout_config_api.migrations import SCHEMA, USES_OUTBOX, migrations

__all__ = ["SCHEMA", "USES_OUTBOX", "migrations", "serve"]


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    from turnout_common.web import serve as run
    from turnout_config_api.app import create_app
    from turnout_config_api.settings import ConfigApiSettings

    settings = ConfigApiSettings()
    run(create_app, settings, port=settings.config_api_port, service="config-api")
