"""Process entry point: `turnout serve metering`."""

from __future__ import annotations

# the CLI (`turnout migrate`) reads these three from every service's main module
from turnout_metering.migrations import SCHEMA, USES_OUTBOX, migrations

__all__ = ["SCHEMA", "USES_OUTBOX", "migrations", "serve"]


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    from turnout_common.web import serve as run
    from turnout_metering.app import create_app
    from turnout_metering.settings import MeteringSettings

    settings = MeteringSettings()
    run(create_app, settings, port=settings.metering_port, service="metering")
