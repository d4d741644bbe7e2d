"""Process entry point: `turnout serve health-worker`."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "health"
USES_OUTBOX = True


def migrations() -> list[Migration]:
    return load_migrations("turnout_health.migrations")


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    from turnout_common.settings import CommonSettings
    from turnout_common.web import serve as run
    from turnout_health.app import create_app

    settings = CommonSettings(service_name="health-worker")
    run(create_app, settings, port=settings.health_port, service="health-worker")
