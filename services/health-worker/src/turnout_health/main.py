"""Process entry point: `turnout serve health-worker`."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "health"
USES_OUTBOX = True


def migrations() -> list[Migration]:
    return load_migrations("turnout_health.migrations")


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    import uvicorn

    from turnout_common.logs import setup_logging
    from turnout_common.settings import CommonSettings
    from turnout_health.app import create_app

    settings = CommonSettings(service_name="health-worker")
    setup_logging(settings.log_level, json=settings.log_json, service="health-worker")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.health_port, log_level="warning"
    )
