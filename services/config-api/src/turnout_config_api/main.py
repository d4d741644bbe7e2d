"""Process entry point: `turnout serve config-api`."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "config"
USES_OUTBOX = True


def migrations() -> list[Migration]:
    return load_migrations("turnout_config_api.migrations")


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    import uvicorn

    from turnout_common.logs import setup_logging
    from turnout_config_api.app import create_app
    from turnout_config_api.settings import ConfigApiSettings

    settings = ConfigApiSettings()
    setup_logging(settings.log_level, json=settings.log_json, service="config-api")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.config_api_port,
        log_level="warning",
    )
