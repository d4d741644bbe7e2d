"""A small HTTP/1.1 client: keep-alive pool over asyncio transports, responses parsed by httptools.

Why not aiohttp (measured on the 2-core bench VM, bench/RESULTS.md, 2026-11-28): on the
router's hot path aiohttp's client was ~45 % of the CPU samples, and a Granian proxy with
it added +1.0 ms p50 over a 50 ms upstream at c=1 where the same proxy with this protocol
added +0.5 ms; it also costs ~25 MB of RSS and 0.14 s of import. Parsing is llhttp (through
httptools, the parser uvicorn uses); this module owns only the connection life cycle:

* one request at a time per connection, LIFO reuse of idle keep-alive connections per origin,
  at most ``max_connections`` exchanges in flight (more wait for a slot);
* Content-Length, chunked and read-until-close bodies; 1xx answers are skipped;
* a deadline per exchange (a timer that aborts the connection), a separate connect timeout;
* a reused connection the server had already closed (no byte of an answer) is retried once
  on a fresh one; anything else surfaces as :class:`HttpClientError` (or :class:`Timeout`);
* streamed bodies with back-pressure (reading pauses above 256 KiB buffered; a whole-body
  read never pauses);
* header names and values with line breaks are refused (no header injection);
* more than ``max_body`` (256 MiB) of unread body fails instead of exhausting memory
  (a stream read as it arrives stays far below it).

Not supported, by design: HEAD, request bodies from streams, proxies, redirects, cookies,
compression (callers send ``Accept-Encoding: identity``), HTTP/2.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import NamedTuple, cast
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class HttpClientError(Exception):
    """The exchange failed below HTTP: no connection, a broken one, or a malformed answer."""


class ConnectError(HttpClientError):
    """No connection could be opened (refused, unresolvable, TLS failure, connect timeout)."""


class ConnectionClosed(HttpClientError):
    """The server closed the connection before the answer was complete."""


class ProtocolError(HttpClientError):
    """The server's bytes are not a valid HTTP/1.1 answer."""


class Timeout(HttpClientError, TimeoutError):
    """The exchange's deadline passed (the connection was aborted)."""


class Headers(dict[str, str]):
    """Response headers, keyed by lower-case name; repeated headers are joined with ", "."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class _Conn(asyncio.Protocol):
    """One connection; the httptools parser calls back into it (``on_*``)."""

    def __init__(self, origin: Origin, max_body: int = 256 << 20) -> None:
        self.origin = origin
        self._max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._body: deque[bytes] = deque()
        self._size = 0
        self._paused = False
        self._streaming = False
        self._extra = False
        self._informational = False
        self._until_eof = False
        self.status = 0
        self.headers = Headers()
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.error: HttpClientError | None = None

    # -- one exchange -------------------------------------------------------------------------
    def send(self, data: bytes, loop: asyncio.AbstractEventLoop, deadline: float | None) -> None:
        assert self.transport is not None
        self.status, self.headers, self.complete, self.keep_alive = 0, Headers(), False, False
        self.got_bytes, self.error, self._until_eof, self._informational = False, None, False, False
        self._streaming = self._extra = False
        self._head = loop.create_future()
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._expire)
        self.transport.write(data)

    async def read_head(self) -> None:
        assert self._head is not None
        await self._head
        if self.error is not None:
            raise self.error

    async def next_chunk(self) -> bytes:
        """The next piece of the body; ``b""`` once it is complete."""
        self._streaming = True  # from now on, back-pressure applies
        while True:
            if self._body:
                chunk = self._body.popleft()
                self._size -= len(chunk)
                if self._size < LOW_WATER:
                    self._resume()
                return chunk
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            await self._wait()

    async def read_all(self) -> bytes:
        self._streaming = False
        self._resume()
        while not self.complete and self.error is None:
            await self._wait()
        if self.error is not None:
            raise self.error
        body = b"".join(self._body)
        self._body.clear()
        self._size = 0
        return body

    def _resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    async def _wait(self) -> None:
        """Until ``on_body``, ``on_message_complete`` or an abort wakes this reader."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def clear_timeout(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def reusable(self) -> bool:
        t = self.transport
        return (
            self.complete
            and self.keep_alive
            and self.error is None
            and not self.closed
            and not self._paused
            and not self._body
            and t is not None
            and not t.is_closing()
        )

    def abort(self, exc: HttpClientError) -> None:
        if self.error is None and not self.complete:
            self.error = exc
        self.closed = True
        self.clear_timeout()
        self._wake()
        if self.transport is not None:
            self.transport.abort()

    def _expire(self) -> None:
        self._timer = None
        self.abort(Timeout("the upstream exchange timed out"))

    def _wake(self) -> None:
        for fut in (self._head, self._waiter):
            if fut is not None and not fut.done():
                fut.set_result(None)

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._head is None or self.complete:
            self.abort(ProtocolError("the upstream sent bytes nobody asked for"))
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.abort(ProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self.abort(ProtocolError(f"malformed upstream response: {exc}"))
        if self._extra:  # bytes after the complete answer, in the same read
            self.abort(ProtocolError("the upstream sent bytes nobody asked for"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._head is None or self.complete:
            return
        if self._until_eof and self._head.done():
            self.on_message_complete()  # a body delimited by the end of the connection
            return
        why = f": {exc}" if exc else ""
        self.abort(ConnectionClosed(f"the upstream closed the connection{why}"))

    # -- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            self._extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._extra:
            return
        key = name.decode("latin-1").lower()
        val = value.decode("latin-1")
        old = self.headers.get(key)
        dict.__setitem__(self.headers, key, val if old is None else f"{old}, {val}")

    def on_headers_complete(self) -> None:
        if self._extra:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._informational = True
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        h = self.headers
        self._until_eof = (
            "content-length" not in h
            and "chunked" not in (h.get("transfer-encoding") or "").lower()
            and status not in (204, 304)
        )
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._extra:
            return
        self._body.append(body)
        self._size += len(body)
        if self._size > self._max_body:
            self.abort(ProtocolError(f"the response body is over {self._max_body} bytes"))
            return
        if (
            self._streaming
            and self._size > HIGH_WATER
            and not self._paused
            and self.transport is not None
        ):
            self._paused = True
            self.transport.pause_reading()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def on_message_complete(self) -> None:
        if self._extra:
            return
        if self._informational:  # 100 Continue and friends: the real answer follows
            self._informational = False
            self.headers = Headers()
            return
        self.complete = True
        self.clear_timeout()
        self._wake()


class Response:
    """An answer whose head has arrived; read the body, then it goes back to the pool."""

    __slots__ = ("_client", "_conn", "headers", "status")

    def __init__(self, client: HttpClient, conn: _Conn) -> None:
        self._client = client
        self._conn: _Conn | None = conn
        self.status = conn.status
        self.headers = conn.headers

    async def read(self) -> bytes:
        """The whole body (within the exchange's deadline); releases the connection."""
        assert self._conn is not None, "the response was released"
        try:
            return await self._conn.read_all()
        finally:
            self.release()

    async def next_chunk(self) -> bytes:
        """The next piece of the body as it arrives; ``b""`` at the end."""
        assert self._conn is not None, "the response was released"
        return await self._conn.next_chunk()

    async def chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.next_chunk():
            yield chunk

    def clear_timeout(self) -> None:
        """Drop the exchange's deadline (a stream's reader enforces its own)."""
        if self._conn is not None:
            self._conn.clear_timeout()

    def release(self) -> None:
        """Return the connection to the pool if the body was read, else close it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._release(conn)

    close = release


class HttpClient:
    """A keep-alive pool per origin (``scheme://host:port``)."""

    def __init__(
        self,
        *,
        max_connections: int = 1024,
        connect_timeout: float = 5.0,
        keepalive_s: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = 256 << 20,
    ) -> None:
        """``max_body``: the most unread body bytes a connection buffers (fetch's whole body)."""
        self._connect_timeout = connect_timeout
        self._max_body = max_body
        self._keepalive_s = keepalive_s
        self._max_idle = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[_Conn]] = {}
        self._targets: dict[str, tuple[Origin, str, str]] = {}
        self._closed = False

    async def fetch(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        timeout: float | None = None,
    ) -> tuple[int, Headers, bytes]:
        """One whole exchange: (status, headers, body); the deadline covers all of it."""
        resp = await self.request(method, url, headers, body, timeout)
        return resp.status, resp.headers, await resp.read()

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        timeout: float | None = None,
    ) -> Response:
        """Send a request and wait for the answer's head (status and headers)."""
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        origin, path, host = self._target(url)
        data = encode_request(method, path, host, headers, body)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        await self._slots.acquire()
        try:
            for _ in range(2):
                conn, reused = await self._connection(origin, loop, deadline)
                conn.send(data, loop, deadline)
                try:
                    await conn.read_head()
                except ConnectionClosed:
                    if reused and not conn.got_bytes:
                        continue  # the server had dropped the idle connection: once more
                    raise
                except BaseException:
                    conn.abort(ConnectionClosed("the exchange was abandoned"))
                    raise
                return Response(self, conn)
            raise ConnectionClosed("the upstream closed two connections in a row")
        except BaseException:
            self._slots.release()
            raise

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().abort(ConnectionClosed("the client closed"))
        self._idle.clear()

    # -- pool ---------------------------------------------------------------------------------
    async def _connection(
        self, origin: Origin, loop: asyncio.AbstractEventLoop, deadline: float | None
    ) -> tuple[_Conn, bool]:
        idle = self._idle.get(origin)
        now = loop.time()
        while idle:
            conn = idle.pop()
            t = conn.transport
            if conn.closed or t is None or t.is_closing():
                continue
            if now - conn.idle_since > self._keepalive_s:
                conn.abort(ConnectionClosed("idle too long"))
                continue
            return conn, True
        budget = self._connect_timeout
        if deadline is not None:
            budget = min(budget, max(deadline - now, 0.0))
        tls = self._ssl_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(budget):
                _, proto = await loop.create_connection(
                    lambda: _Conn(origin, self._max_body),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError as exc:
            raise ConnectError(f"connecting to {origin.host}:{origin.port} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        return proto, False

    def _release(self, conn: _Conn) -> None:
        self._slots.release()
        conn.clear_timeout()
        if self._closed or not conn.reusable:
            conn.abort(ConnectionClosed("released before the answer was complete"))
            return
        idle = self._idle.setdefault(conn.origin, deque())
        if len(idle) >= self._max_idle:
            conn.abort(ConnectionClosed("the idle pool is full"))
            return
        conn.idle_since = asyncio.get_running_loop().time()
        conn._head = None
        idle.append(conn)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _target(self, url: str) -> tuple[Origin, str, str]:
        hit = self._targets.get(url)
        if hit is None:
            hit = parse_url(url)
            if len(self._targets) >= 4096:
                self._targets.clear()
            self._targets[url] = hit
        return hit


def parse_url(url: str) -> tuple[Origin, str, str]:
    """``(origin, request target, Host header)`` of an absolute http(s) URL."""
    if any(c in url for c in " \t\r\n"):
        raise ValueError(f"a URL must not contain whitespace: {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(scheme, host, port), target, host_header


_FRAMING = frozenset(("host", "content-length", "transfer-encoding", "connection"))


def encode_request(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes
) -> bytes:
    """The request's bytes; refuses line breaks in names/values (header injection)."""
    if method == "HEAD":
        raise ValueError("HEAD is not supported by this client")
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise ValueError(f"invalid header {name!r}: line breaks are not allowed")
        if name.lower() not in _FRAMING:
            lines.append(f"{name}: {value}\r\n")
    if body or method not in ("GET", "DELETE"):
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    try:
        head = "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"a request header is not latin-1 text: {exc}") from exc
    return head + body if body else head
