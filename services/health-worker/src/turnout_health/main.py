"""Process entry point: `turnout serve health-worker`."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "health"
USES_OUTBOX = False


def migrations() -> list[Migration]:
    return load_migrations("turnout_health.migrations")


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    import uvicorn

    from turnout_common.settings import CommonSettings
    from turnout_health.app import create_app

    settings = CommonSettings()
    uvicorn.run(create_app(), host=settings.host, port=settings.health_port, log_level="warning")
