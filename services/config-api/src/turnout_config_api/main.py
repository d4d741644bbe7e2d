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

    from turnout_common.settings import CommonSettings
    from turnout_config_api.app import create_app

    settings = CommonSettings()
    uvicorn.run(
        create_app(), host=settings.host, port=settings.config_api_port, log_level="warning"
    )
