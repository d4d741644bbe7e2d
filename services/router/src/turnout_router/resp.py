"""A minimal pipelined Redis client for the request path (RESP2 over one connection).

Why not redis-py: its asyncio client costs ~250 µs of CPU per command in this process
(connection-pool checkout, command building, a task per read) — as much as the whole rest of
a request. Here every command issued in one event-loop turn goes out in one ``write`` and
replies are matched to futures in order (Redis answers a connection's commands in order), so
64 concurrent requests cost one write and one read of the store, and a command costs a few
µs: ``hiredis`` packs commands and parses replies in C.

Timeouts without a timer per command: a watchdog ticking every quarter of ``timeout_s``
aborts the connection when its oldest unanswered command is older than ``timeout_s``; every
pending command then fails with :class:`ConnectionError`. Nothing reconnects by itself: the
owner (:class:`turnout_router.shared.SharedStore`) decides when to try again.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

ReplyError = hiredis.ReplyError


class Resp(asyncio.Protocol):
    """One connection; ``call`` queues a command and returns the future of its reply."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._reader = hiredis.Reader()
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = asyncio.Event()

    # --- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._watchdog = self._loop.call_later(self.timeout_s / 4, self._watch)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        while (reply := self._reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self.abort("unexpected reply")
                return
            fut, _ = waiting.popleft()
            if fut.done():
                continue
            if isinstance(reply, ReplyError):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._watchdog is not None:
            self._watchdog.cancel()
        err = ConnectionError(f"connection to the store lost ({exc or 'closed'})")
        while self._waiting:
            fut, _ = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(err)
        self.closed.set()

    # --- commands -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; written with the others of this loop turn."""
        if not self.connected:
            raise ConnectionError("not connected to the store")
        fut: asyncio.Future[Any] = self._loop.create_future()
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(hiredis.pack_command(args))
        self._waiting.append((fut, time.monotonic()))
        return fut

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and out:
            self._transport.write(b"".join(out))

    def _watch(self) -> None:
        if self._waiting and time.monotonic() - self._waiting[0][1] > self.timeout_s:
            self.abort(f"no answer within {self.timeout_s * 1000:.0f} ms")
            return
        self._watchdog = self._loop.call_later(self.timeout_s / 4, self._watch)

    def abort(self, why: str) -> None:
        if self._transport is not None:
            self._transport.abort()  # connection_lost fails every pending command
        self._out.clear()


async def connect(url: str, timeout_s: float) -> Resp:
    """Open a connection to ``redis://[user:password@]host[:port][/db]`` (``rediss://`` for
    TLS), authenticate and select the database."""
    u = urlsplit(url)
    if u.scheme not in ("redis", "rediss"):
        raise ValueError("TURNOUT_REDIS_URL must be redis://… or rediss://…")
    loop = asyncio.get_running_loop()
    ctx = ssl.create_default_context() if u.scheme == "rediss" else None
    _, proto = await asyncio.wait_for(
        loop.create_connection(
            lambda: Resp(timeout_s), u.hostname or "127.0.0.1", u.port or 6379, ssl=ctx
        ),
        timeout_s,
    )
    try:
        if u.password is not None:
            auth = [unquote(u.password)]
            if u.username:
                auth.insert(0, unquote(u.username))
            await proto.call("AUTH", *auth)
        db = u.path.strip("/")
        if db and db != "0":
            await proto.call("SELECT", int(db))
    except BaseException:
        proto.abort("set-up failed")
        raise
    return proto
