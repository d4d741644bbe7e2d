"""Process entry point: `turnout serve router`."""

from __future__ import annotations

from turnout_common.migrations import Migration

SCHEMA: str | None = None
USES_OUTBOX = False


def migrations() -> list[Migration]:
    return []


def serve() -> None:
    """Run the service until SIGTERM/SIGINT (settings from the environment)."""
    import uvicorn

    from turnout_common.settings import CommonSettings
    from turnout_router.app import create_app

    settings = CommonSettings()
    uvicorn.run(create_app(), host=settings.host, port=settings.router_port, log_level="warning")
