"""Run an aiohttp application on a free localhost port in a background thread.

Tests use this for upstream LLM stand-ins (real HTTP servers, never patched clients) and for
JWKS servers; it works whatever event loop the test itself runs on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from turnout_common.devinfra import free_port


class LocalServer:
    """``with LocalServer(app) as srv: srv.url`` — stop() closes every connection."""

    def __init__(
        self, app_factory: Callable[[], web.Application] | web.Application, port: int | None = None
    ) -> None:
        self._factory = app_factory
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:
                error.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name=f"server:{self.port}")
        self._thread.start()
        ready.wait(10)
        if error:
            raise error[0]
        return self

    async def _start(self) -> None:
        app = self._factory if isinstance(self._factory, web.Application) else self._factory()
        self.app = app
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
            self._thread = None

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the server's loop (thread-safe)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn, *args)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
