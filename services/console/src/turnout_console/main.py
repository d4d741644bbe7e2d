"""Process entry point: `turnout serve console`."""

from __future__ import annotations

from turnout_common.migrations import Migration

SCHEMA: str | None = None
"""The console owns no database schema: it reads and writes through the services' APIs."""
USES_OUTBOX = False


def migrations() -> list[Migration]:
    return []


def serve() -> None:
    """Run the console until SIGTERM/SIGINT (settings from the environment)."""
    from turnout_common.web import serve as run
    from turnout_console.app import create_app
    from turnout_console.settings import ConsoleSettings

    settings = ConsoleSettings()
    run(create_app, settings, port=settings.console_port, service="console")
