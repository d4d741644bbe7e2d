"""Process entry point: `turnout serve config-api`."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "config"
USES_OUTBOX = True


def migrations() -> list[Migration]:
    return load_migrations("turnout_config_api.migrations")


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    from turnout_common.web import serve as run
    from turnout_config_api.app import create_app
    from turnout_config_api.settings import ConfigApiSettings

    settings = ConfigApiSettings()
    run(create_app, settings, port=settings.config_api_port, service="config-api")
