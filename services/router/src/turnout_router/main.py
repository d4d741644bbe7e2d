"""Process entry point: `turnout serve router` (Granian RSGI, uvloop, one process).

Two ways to run the same RSGI app (``TURNOUT_ROUTER_SERVER``):

* ``embedded`` (default): Granian's RSGI worker inside this process on a uvloop loop. One
  process: ~80 MB RSS and ready in about half the time, same per-request cost (measured).
* ``workers``: Granian's process manager (``--interface rsgi --loop uvloop --workers 1
  --runtime-threads 1 --runtime-mode st``), i.e. a supervisor process plus one worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # neither is needed at run time: asyncpg alone costs ~0.1 s of start-up
    from turnout_common.migrations import Migration
    from turnout_router.settings import RouterSettings

SCHEMA: str | None = None
USES_OUTBOX = False


def migrations() -> list[Migration]:
    return []


def serve() -> None:
    """Run the router until SIGTERM/SIGINT (settings from the environment).

    Called from the ``turnout`` CLI, it first re-executes itself as ``python -m
    turnout_router`` (same PID, same environment): the CLI's own imports (typer, every
    service's module) would otherwise cost the data plane ~25 MB of RSS.
    """
    import os
    import sys

    if os.environ.get("_TURNOUT_ROUTER_EXEC") != "1":
        os.environ["_TURNOUT_ROUTER_EXEC"] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "turnout_router"])  # noqa: S606
    run()


def run() -> None:
    """Serve in this process (``python -m turnout_router``)."""
    from turnout_router.settings import RouterSettings

    settings = RouterSettings()
    if settings.router_server == "workers":
        _serve_workers(settings)
    else:
        import uvloop

        uvloop.run(_serve_embedded(settings))


async def _serve_embedded(settings: RouterSettings) -> None:
    import asyncio
    import signal

    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    from turnout_router.app import create_app

    app = create_app(settings)
    server = Server(
        app,
        address=settings.host,
        port=settings.router_port,
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,
        websockets=False,
        backlog=2048,
        log_enabled=False,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    try:
        await server.serve()
    finally:
        await app.shutdown()


def _serve_workers(settings: RouterSettings) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes

    Granian(
        "turnout_router.app:create_app",
        factory=True,
        address=settings.host,
        port=settings.router_port,
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,
        workers=1,
        runtime_threads=1,
        runtime_mode=RuntimeModes.st,
        http=HTTPModes.http1,
        websockets=False,
        backlog=2048,
        log_access=False,
    ).serve()
