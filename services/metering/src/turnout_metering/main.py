"""Process entry point: `turnout serve metering`."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "metering"
USES_OUTBOX = True


def migrations() -> list[Migration]:
    return load_migrations("turnout_metering.migrations")


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    from turnout_common.web import serve as run
    from turnout_metering.app import create_app
    from turnout_metering.settings import MeteringSettings

    settings = MeteringSettings()
    run(create_app, settings, port=settings.metering_port, service="metering")
