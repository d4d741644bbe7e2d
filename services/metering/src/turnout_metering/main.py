"""Process entry point: `turnout serve metering`."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "metering"
USES_OUTBOX = True


def migrations() -> list[Migration]:
    return load_migrations("turnout_metering.migrations")


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    import uvicorn

    from turnout_common.logs import setup_logging
    from turnout_metering.app import create_app
    from turnout_metering.settings import MeteringSettings

    settings = MeteringSettings()
    setup_logging(settings.log_level, json=settings.log_json, service="metering")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.metering_port, log_level="warning"
    )
