"""The HTTP/1.1 client against raw localhost servers that write exact bytes (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from turnout_common.devinfra import free_port
from turnout_common.http1 import (
    HIGH_WATER,
    ConnectError,
    ConnectionClosed,
    Headers,
    HttpClient,
    HttpClientError,
    Origin,
    ProtocolError,
    Timeout,
    encode_request,
    parse_url,
)
from turnout_common.testing.waiting import wait_until

# -- a raw server ------------------------------------------------------------------------------

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


class Request:
    def __init__(self, line: str, headers: dict[str, str], body: bytes, conn: int) -> None:
        self.line = line
        self.headers = headers
        self.body = body
        self.conn = conn  # 1-based index of the connection it came on

    @property
    def path(self) -> str:
        return self.line.split(" ")[1]


class RawServer:
    """``asyncio.start_server`` on 127.0.0.1; the handler writes the exact response bytes."""

    def __init__(self, handler: Callable[[RawServer, Reader, Writer, int], Awaitable[None]]):
        self.handler = handler
        self.accepted = 0
        self.requests: list[Request] = []
        self.eofs: list[int] = []  # connections the client closed (seen by read_request)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[Writer] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> RawServer:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _on_client(self, reader: Reader, writer: Writer) -> None:
        self.accepted += 1
        index = self.accepted
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(self, reader, writer, index)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)

    async def read_request(self, reader: Reader, conn: int) -> Request | None:
        """The next request on the connection, or None once the client closed it."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eofs.append(conn)
            return None
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        body = await reader.readexactly(size) if size else b""
        req = Request(lines[0], headers, body, conn)
        self.requests.append(req)
        return req

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def serve(
    handler: Callable[[RawServer, Reader, Writer, int], Awaitable[None]],
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[RawServer]:
    server = await RawServer(handler).start(ssl_context)
    try:
        yield server
    finally:
        await server.close()


def keep_alive(
    respond: Callable[[Request], bytes],
) -> Callable[[RawServer, Reader, Writer, int], Awaitable[None]]:
    """A handler answering every request on the connection with ``respond(request)``."""

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (req := await srv.read_request(reader, conn)) is not None:
            writer.write(respond(req))
            await writer.drain()

    return handler


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    c = HttpClient(connect_timeout=1.0)
    try:
        yield c
    finally:
        await c.close()


# -- keep-alive, headers ------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection_and_parses_headers(client: HttpClient) -> None:
    def respond(req: Request) -> bytes:
        return ok(
            f"you asked {req.path}".encode(),
            "Content-Type: text/plain; charset=utf-8",
            "X-Multi: a",
            "x-multi: b",
        )

    async with serve(keep_alive(respond)) as srv:
        s1, h1, b1 = await client.fetch("GET", srv.url("/one?x=1"), {}, timeout=1)
        s2, h2, b2 = await client.fetch("GET", srv.url("/two"), {"Accept": "*/*"}, timeout=1)

    assert srv.accepted == 1
    assert [r.conn for r in srv.requests] == [1, 1]
    assert (s1, b1) == (200, b"you asked /one?x=1")
    assert (s2, b2) == (200, b"you asked /two")
    for h in (h1, h2):
        assert isinstance(h, Headers)
        assert h.get("Content-Type") == "text/plain; charset=utf-8"
        assert h["CONTENT-TYPE"] == "text/plain; charset=utf-8"
        assert "content-type" in h and "Content-Type" in h
        assert "x-absent" not in h and h.get("X-Absent") is None
        assert h.get("X-Absent", "dflt") == "dflt"
        assert h.get("x-multi") == "a, b"
        assert h.get("Content-Length") == str(len(b2) if h is h2 else len(b1))
    assert 42 not in h1  # type: ignore[comparison-overlap]  # a non-str key is no error


async def test_request_bytes_seen_by_the_server(client: HttpClient) -> None:
    async with serve(keep_alive(lambda r: ok(b""))) as srv:
        status, _, body = await client.fetch(
            "POST",
            srv.url("/submit?q=a%20b"),
            {"Host": "evil.example", "Content-Length": "999", "X-Token": "t"},
            body=b'{"k": 1}',
            timeout=1,
        )
    assert (status, body) == (200, b"")
    (req,) = srv.requests
    assert req.line == "POST /submit?q=a%20b HTTP/1.1"
    # framing headers come from the client, never from the caller
    assert req.headers["host"] == f"127.0.0.1:{srv.port}"
    assert req.headers["content-length"] == "8"
    assert req.headers["x-token"] == "t"
    assert req.body == b'{"k": 1}'


async def test_204_without_body_keeps_the_connection(client: HttpClient) -> None:
    async with serve(keep_alive(lambda r: b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")) as srv:
        r1 = await client.fetch("DELETE", srv.url("/a"), {}, timeout=1)
        r2 = await client.fetch("DELETE", srv.url("/b"), {}, timeout=1)
    assert r1[0] == r2[0] == 204
    assert r1[2] == r2[2] == b""
    assert r1[1].get("x-a") == "1"
    assert srv.accepted == 1


async def test_idle_connections_are_reused_lifo(client: HttpClient) -> None:
    gate = asyncio.Event()

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (req := await srv.read_request(reader, conn)) is not None:
            if req.path == "/slow":
                await gate.wait()
            writer.write(ok(str(conn).encode()))
            await writer.drain()

    async with serve(handler) as srv:
        url = srv.url("/slow")
        first = asyncio.create_task(client.fetch("GET", url, {}, timeout=1))
        second = asyncio.create_task(client.fetch("GET", url, {}, timeout=1))
        await wait_until(lambda: len(srv.requests) == 2)
        gate.set()
        bodies = {(await first)[2], (await second)[2]}
        assert bodies == {b"1", b"2"}
        # both are idle now; the one released last is used first, and again after that
        _, _, b3 = await client.fetch("GET", srv.url("/fast"), {}, timeout=1)
        _, _, b4 = await client.fetch("GET", srv.url("/fast"), {}, timeout=1)
    assert b3 == b4
    assert srv.accepted == 2


async def test_idle_connection_older_than_keepalive_is_not_reused() -> None:
    c = HttpClient(keepalive_s=0.05)
    try:
        async with serve(keep_alive(lambda r: ok(b"x"))) as srv:
            await c.fetch("GET", srv.url(), {}, timeout=1)
            await asyncio.sleep(0.1)
            status, _, body = await c.fetch("GET", srv.url(), {}, timeout=1)
            await wait_until(lambda: 1 in srv.eofs)  # the expired one was closed by us
    finally:
        await c.close()
    assert (status, body) == (200, b"x")
    assert srv.accepted == 2


# -- chunked and until-close bodies -------------------------------------------------------------

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_chunked_body_read_whole(client: HttpClient) -> None:
    def respond(req: Request) -> bytes:
        return (
            CHUNKED_HEAD
            + chunk(b"hello ")
            + chunk(b"chunked ")
            + chunk(b"world" * 100)
            + b"0\r\nX-Trailer: t\r\n\r\n"
        )

    async with serve(keep_alive(respond)) as srv:
        status, headers, body = await client.fetch("GET", srv.url(), {}, timeout=1)
        again = await client.fetch("GET", srv.url(), {}, timeout=1)
    assert status == 200
    assert headers.get("transfer-encoding") == "chunked"
    assert body == b"hello chunked " + b"world" * 100
    assert again[2] == body
    assert srv.accepted == 1  # a chunked answer keeps the connection


async def test_chunked_body_streams_before_it_is_complete(client: HttpClient) -> None:
    go_on = asyncio.Event()
    finished = asyncio.Event()

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (req := await srv.read_request(reader, conn)) is not None:
            if req.path != "/stream":
                writer.write(ok(b"plain"))
                continue
            writer.write(CHUNKED_HEAD + chunk(b"first"))
            await writer.drain()
            await go_on.wait()
            for piece in (b"second", b"third"):
                await asyncio.sleep(0.02)
                writer.write(chunk(piece))
                await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")
            finished.set()

    async with serve(handler) as srv:
        resp = await client.request("GET", srv.url("/stream"), {}, timeout=1)
        assert resp.status == 200
        first = await resp.next_chunk()
        # the server is still holding the rest back until we say so
        assert first == b"first"
        assert not finished.is_set()
        go_on.set()
        rest: list[bytes] = []
        async for piece in resp.chunks():
            rest.append(piece)
            if len(rest) == 1:
                assert not finished.is_set()  # this piece came before the end too
        assert await resp.next_chunk() == b""  # the end is sticky
        resp.release()
        assert finished.is_set()
        assert b"".join(rest) == b"secondthird"
        assert rest[0] == b"second"
        # a fully consumed stream gives its connection back
        assert (await client.fetch("GET", srv.url("/plain"), {}, timeout=1))[2] == b"plain"
    assert srv.accepted == 1


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
    ],
    ids=["http1.0", "http1.1-no-length"],
)
async def test_body_delimited_by_connection_close(client: HttpClient, head: bytes) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        if await srv.read_request(reader, conn) is None:
            return
        writer.write(head + b"part one, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"part two.")
        await writer.drain()
        writer.close()

    async with serve(handler) as srv:
        status, headers, body = await client.fetch("GET", srv.url(), {}, timeout=1)
        second = await client.fetch("GET", srv.url(), {}, timeout=1)
    assert status == 200
    assert headers.get("content-type") == "text/plain"
    assert body == b"part one, part two."
    assert second[2] == body
    assert srv.accepted == 2


async def test_http10_answer_with_length_is_not_kept(client: HttpClient) -> None:
    response = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with serve(keep_alive(lambda r: response)) as srv:
        assert (await client.fetch("GET", srv.url(), {}, timeout=1))[2] == b"ok"
        assert (await client.fetch("GET", srv.url(), {}, timeout=1))[2] == b"ok"
        await wait_until(lambda: 1 in srv.eofs)
    assert srv.accepted == 2


# -- connections the server closes --------------------------------------------------------------


async def test_stale_idle_connection_closed_by_server(client: HttpClient) -> None:
    closed = asyncio.Event()

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        if (req := await srv.read_request(reader, conn)) is None:
            return
        writer.write(ok(f"conn {conn} {req.path}".encode()))  # no "Connection: close"
        await writer.drain()
        if conn == 1:
            writer.close()  # then it drops the idle connection
            closed.set()
        else:
            await keep_alive(lambda r: ok(b"later"))(srv, reader, writer, conn)

    async with serve(handler) as srv:
        assert (await client.fetch("GET", srv.url("/a"), {}, timeout=1))[2] == b"conn 1 /a"
        await closed.wait()
        await asyncio.sleep(0.02)
        status, _, body = await client.fetch("GET", srv.url("/b"), {}, timeout=1)
    assert (status, body) == (200, b"conn 2 /b")
    assert srv.accepted == 2


async def test_reused_connection_closed_without_an_answer_is_retried_once(
    client: HttpClient,
) -> None:
    """The server reads the next request on the idle connection and closes: a race we lost."""

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        if conn == 1:
            if await srv.read_request(reader, conn) is None:
                return
            writer.write(ok(b"first"))
            await writer.drain()
            await srv.read_request(reader, conn)
            writer.close()  # no byte of an answer
            return
        await keep_alive(lambda r: ok(b"fresh " + r.body))(srv, reader, writer, conn)

    async with serve(handler) as srv:
        assert (await client.fetch("GET", srv.url(), {}, timeout=1))[2] == b"first"
        status, _, body = await client.fetch("POST", srv.url("/p"), {}, b"data", timeout=1)
    assert (status, body) == (200, b"fresh data")
    assert srv.accepted == 2
    assert [(r.path, r.conn) for r in srv.requests] == [("/", 1), ("/p", 1), ("/p", 2)]


async def test_fresh_connection_closed_without_an_answer_is_not_retried(
    client: HttpClient,
) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        await srv.read_request(reader, conn)
        writer.close()

    async with serve(handler) as srv:
        with pytest.raises(ConnectionClosed):
            await client.fetch("GET", srv.url(), {}, timeout=1)
    assert srv.accepted == 1


async def test_reused_connection_closed_mid_answer_is_not_retried(client: HttpClient) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        await srv.read_request(reader, conn)
        writer.write(ok(b"first"))
        await srv.read_request(reader, conn)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")  # some bytes of an answer, then gone
        await writer.drain()
        writer.close()

    async with serve(handler) as srv:
        await client.fetch("GET", srv.url(), {}, timeout=1)
        with pytest.raises(ConnectionClosed):
            await client.fetch("GET", srv.url(), {}, timeout=1)
    assert srv.accepted == 1  # it may have been processed: not sent again


async def test_connection_close_from_server_is_not_reused(client: HttpClient) -> None:
    # the server announces "Connection: close" but leaves the socket open: we must close it
    response = ok(b"bye", "Connection: close")
    async with serve(keep_alive(lambda r: response)) as srv:
        r1 = await client.fetch("GET", srv.url(), {}, timeout=1)
        await wait_until(lambda: 1 in srv.eofs)
        r2 = await client.fetch("GET", srv.url(), {}, timeout=1)
    assert r1[0] == r2[0] == 200
    assert r1[2] == r2[2] == b"bye"
    assert r1[1].get("connection") == "close"
    assert srv.accepted == 2
    assert [r.conn for r in srv.requests] == [1, 2]


async def test_unsolicited_bytes_on_an_idle_connection_drop_it(client: HttpClient) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (await srv.read_request(reader, conn)) is not None:
            writer.write(ok(b"fine"))
            await writer.drain()
            if conn == 1:
                await asyncio.sleep(0.02)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")

    async with serve(handler) as srv:
        assert (await client.fetch("GET", srv.url(), {}, timeout=1))[2] == b"fine"
        await wait_until(lambda: 1 in srv.eofs)  # we hung up on the chatty connection
        assert (await client.fetch("GET", srv.url(), {}, timeout=1))[2] == b"fine"
    assert srv.accepted == 2


# -- timeouts and connect errors ----------------------------------------------------------------


async def test_timeout_raises_and_frees_the_slot() -> None:
    c = HttpClient(max_connections=1, connect_timeout=1.0)

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (req := await srv.read_request(reader, conn)) is not None:
            if req.path == "/hang":  # never answers; notes when the client gives up
                with contextlib.suppress(ConnectionError):
                    await reader.read()
                srv.eofs.append(conn)
                return
            writer.write(ok(b"ok"))
            await writer.drain()

    try:
        async with serve(handler) as srv:
            start = time.monotonic()
            with pytest.raises(Timeout) as info:
                await c.fetch("GET", srv.url("/hang"), {}, timeout=0.2)
            elapsed = time.monotonic() - start
            assert 0.18 <= elapsed < 0.6
            assert isinstance(info.value, TimeoutError)
            assert isinstance(info.value, HttpClientError)
            # the aborted connection is not reused, and the only slot is free again
            await wait_until(lambda: 1 in srv.eofs)
            async with asyncio.timeout(1):
                status, _, body = await c.fetch("GET", srv.url("/ok"), {}, timeout=1)
            assert (status, body) == (200, b"ok")
            assert srv.accepted == 2
    finally:
        await c.close()


async def test_timeout_covers_the_body_and_clear_timeout_lifts_it(client: HttpClient) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while await srv.read_request(reader, conn) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf-")
            await writer.drain()
            await asyncio.sleep(0.25)
            writer.write(b"done!")
            await writer.drain()

    async with serve(handler) as srv:
        start = time.monotonic()
        with pytest.raises(Timeout):
            await client.fetch("GET", srv.url(), {}, timeout=0.1)
        assert time.monotonic() - start < 0.2

        resp = await client.request("GET", srv.url(), {}, timeout=0.1)
        assert resp.status == 200
        resp.clear_timeout()  # e.g. a stream whose reader has its own idle limit
        assert await resp.read() == b"half-done!"
    assert srv.accepted == 2


async def test_timeout_while_streaming_surfaces_from_next_chunk(client: HttpClient) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        await srv.read_request(reader, conn)
        writer.write(CHUNKED_HEAD + chunk(b"a"))
        await asyncio.sleep(3600)

    async with serve(handler) as srv:
        resp = await client.request("GET", srv.url(), {}, timeout=0.15)
        assert await resp.next_chunk() == b"a"
        with pytest.raises(Timeout):
            await resp.next_chunk()
        resp.release()


async def test_connect_refused_is_a_connect_error() -> None:
    c = HttpClient(max_connections=1, connect_timeout=1.0)
    url = f"http://127.0.0.1:{free_port()}/x"
    try:
        async with asyncio.timeout(2):
            for _ in range(2):  # the failed attempt gave its slot back
                with pytest.raises(ConnectError) as info:
                    await c.fetch("GET", url, {}, timeout=1)
                assert isinstance(info.value, HttpClientError)
                assert not isinstance(info.value, TimeoutError)
    finally:
        await c.close()


# -- malformed and truncated answers ------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n",
    ],
    ids=["garbage", "bad-status", "two-lengths", "bad-chunk-size", "upgrade"],
)
async def test_malformed_response_is_a_protocol_error(client: HttpClient, response: bytes) -> None:
    async with serve(keep_alive(lambda r: response)) as srv:
        with pytest.raises(ProtocolError) as info:
            await client.fetch("GET", srv.url(), {}, timeout=1)
        assert isinstance(info.value, HttpClientError)
        await wait_until(lambda: 1 in srv.eofs)  # that connection is dropped


async def test_a_whole_body_over_max_body_fails_but_a_stream_is_not_capped() -> None:
    part = b"x" * 3000

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while await srv.read_request(reader, conn) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (3 * len(part)))
            for _ in range(3):
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.02)

    c = HttpClient(max_body=4096)
    try:
        async with serve(handler) as srv:
            with pytest.raises(ProtocolError, match="over 4096 bytes"):
                await c.fetch("GET", srv.url(), {}, timeout=1)
            resp = await c.request("GET", srv.url(), {}, timeout=1)
            got = b"".join([piece async for piece in resp.chunks()])
            resp.release()
        assert got == part * 3  # read as it arrives: never more than max_body buffered
    finally:
        await c.close()


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        CHUNKED_HEAD + chunk(b"abc"),
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
    ids=["short-length", "unfinished-chunked", "half-head"],
)
async def test_server_closing_mid_answer_is_connection_closed(
    client: HttpClient, response: bytes
) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        await srv.read_request(reader, conn)
        writer.write(response)
        await writer.drain()
        writer.close()

    async with serve(handler) as srv:
        with pytest.raises(ConnectionClosed):
            await client.fetch("GET", srv.url(), {}, timeout=1)


async def test_stream_closed_mid_body_raises_after_the_received_bytes(
    client: HttpClient,
) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        await srv.read_request(reader, conn)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.close()

    async with serve(handler) as srv:
        resp = await client.request("GET", srv.url(), {}, timeout=1)
        assert await resp.next_chunk() == b"abc"
        with pytest.raises(ConnectionClosed):
            await resp.next_chunk()
        resp.release()


# -- 1xx ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "two-writes"])
async def test_100_continue_then_200(client: HttpClient, split: bool) -> None:
    interim = b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
    final = ok(b"the answer", "X-Final: yes")

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while await srv.read_request(reader, conn) is not None:
            if split:
                writer.write(interim)
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(final)
            else:
                writer.write(interim + final)
            await writer.drain()

    async with serve(handler) as srv:
        status, headers, body = await client.fetch("POST", srv.url(), {}, b"q", timeout=1)
        again = await client.fetch("POST", srv.url(), {}, b"q", timeout=1)
    assert (status, body) == (200, b"the answer")
    assert headers.get("x-final") == "yes"
    assert "x-interim" not in headers
    assert again[0] == 200 and again[2] == b"the answer"
    assert srv.accepted == 1


# -- the pool limit -----------------------------------------------------------------------------


async def test_max_connections_one_serialises_concurrent_fetches() -> None:
    c = HttpClient(max_connections=1)
    in_flight = 0
    most = 0

    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        nonlocal in_flight, most
        while (req := await srv.read_request(reader, conn)) is not None:
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            writer.write(ok(req.path.encode()))
            await writer.drain()

    try:
        async with serve(handler) as srv:
            results = await asyncio.gather(
                *(c.fetch("GET", srv.url(f"/{i}"), {}, timeout=1) for i in range(3))
            )
    finally:
        await c.close()
    assert [r[2] for r in results] == [b"/0", b"/1", b"/2"]
    assert all(r[0] == 200 for r in results)
    assert srv.accepted == 1
    assert most == 1


async def test_without_a_limit_concurrent_fetches_open_parallel_connections(
    client: HttpClient,
) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (req := await srv.read_request(reader, conn)) is not None:
            await asyncio.sleep(0.02)
            writer.write(ok(req.path.encode()))
            await writer.drain()

    async with serve(handler) as srv:
        results = await asyncio.gather(
            *(client.fetch("GET", srv.url(f"/{i}"), {}, timeout=1) for i in range(3))
        )
        assert [r[2] for r in results] == [b"/0", b"/1", b"/2"]
        assert srv.accepted == 3
        # all three went back to the pool
        await asyncio.gather(*(client.fetch("GET", srv.url(), {}, timeout=1) for _ in range(3)))
    assert srv.accepted == 3


# -- streaming, back-pressure, release ----------------------------------------------------------

BIG = bytes(range(256)) * (8 * 1024)  # 2 MiB with a pattern, so order matters


async def test_back_pressure_streams_a_large_body_intact(client: HttpClient) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (req := await srv.read_request(reader, conn)) is not None:
            writer.write(ok(BIG if req.path == "/big" else b"small"))
            await writer.drain()

    async with serve(handler) as srv:
        resp = await client.request("GET", srv.url("/big"), {}, timeout=2)
        assert resp.headers.get("content-length") == str(len(BIG))
        got = bytearray()
        most_buffered = 0
        while piece := await resp.next_chunk():
            got += piece
            await asyncio.sleep(0.003)  # a slow consumer
            # white-box: what the connection holds for us stays bounded (reading pauses)
            most_buffered = max(most_buffered, resp._conn._size)  # type: ignore[union-attr]
        resp.release()
        assert bytes(got) == BIG
        assert most_buffered < 4 * HIGH_WATER < len(BIG)
        # the connection was resumed and drained: it serves the next exchange
        assert (await client.fetch("GET", srv.url(), {}, timeout=2))[2] == b"small"
    assert srv.accepted == 1


@pytest.mark.parametrize(
    "size",
    [400_000, len(BIG)],
    # 400 kB usually completes while paused, and the paused connection goes back to the pool
    # (the next exchange on it times out); 2 MiB pauses mid-body and fetch() itself times out
    ids=["just-over-high-water", "2MiB"],
)
async def test_fetch_reads_a_body_larger_than_the_high_water_mark(
    client: HttpClient, size: int
) -> None:
    body = BIG[:size]
    async with serve(keep_alive(lambda r: ok(body if r.path == "/big" else b"small"))) as srv:
        status, _, got = await client.fetch("GET", srv.url("/big"), {}, timeout=0.3)
        assert (status, got) == (200, body)
        assert (await client.fetch("GET", srv.url("/small"), {}, timeout=0.3))[2] == b"small"
    assert srv.accepted == 1


async def test_releasing_an_unfinished_stream_closes_its_connection(client: HttpClient) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        while (req := await srv.read_request(reader, conn)) is not None:
            if req.path == "/long":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            else:
                writer.write(ok(b"short"))
            await writer.drain()

    async with serve(handler) as srv:
        resp = await client.request("GET", srv.url("/long"), {}, timeout=1)
        assert await resp.next_chunk() == b"0123456789"
        resp.release()
        resp.release()  # idempotent
        await wait_until(lambda: 1 in srv.eofs)
        assert (await client.fetch("GET", srv.url("/short"), {}, timeout=1))[2] == b"short"
    assert srv.accepted == 2
    assert [r.conn for r in srv.requests] == [1, 2]


async def test_a_stream_released_unread_frees_the_only_slot() -> None:
    c = HttpClient(max_connections=1)
    async with serve(keep_alive(lambda r: ok(b"body"))) as srv:
        try:
            resp = await c.request("GET", srv.url(), {}, timeout=1)
            resp.close()  # the alias of release()
            async with asyncio.timeout(1):
                assert (await c.fetch("GET", srv.url(), {}, timeout=1))[2] == b"body"
        finally:
            await c.close()


async def test_close_aborts_idle_connections_and_refuses_requests() -> None:
    c = HttpClient()
    async with serve(keep_alive(lambda r: ok(b"x"))) as srv:
        await c.fetch("GET", srv.url(), {}, timeout=1)
        await c.fetch("GET", srv.url(), {}, timeout=1)
        assert srv.eofs == []  # idle in the pool
        await c.close()
        await wait_until(lambda: srv.eofs == [1])
        with pytest.raises(RuntimeError):
            await c.request("GET", srv.url(), {}, timeout=1)
        with pytest.raises(RuntimeError):
            await c.fetch("GET", srv.url(), {}, timeout=1)
    assert srv.accepted == 1


async def test_a_response_released_after_close_is_not_pooled() -> None:
    c = HttpClient()
    async with serve(keep_alive(lambda r: ok(b"x"))) as srv:
        resp = await c.request("GET", srv.url(), {}, timeout=1)
        await c.close()
        assert await resp.read() == b"x"  # in flight: it completes
        await wait_until(lambda: srv.eofs == [1])  # but its connection is closed on release


# -- header injection, encode_request, parse_url ------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "ok\r\nX-Injected: 1"},
        {"X-A": "line\nbreak"},
        {"X-A": "carriage\rreturn"},
        {"X-A\r\nX-B": "v"},
        {"X-A: v\r\nX-B": "v"},
    ],
)
async def test_header_injection_is_refused_before_anything_is_sent(
    headers: dict[str, str],
) -> None:
    c = HttpClient(max_connections=1)
    async with serve(keep_alive(lambda r: ok(b"x"))) as srv:
        try:
            with pytest.raises(ValueError):
                await c.fetch("GET", srv.url(), headers, timeout=1)
            assert srv.accepted == 0
            # nothing was held: the only slot is free
            async with asyncio.timeout(1):
                assert (await c.fetch("GET", srv.url(), {"X-A": "fine"}, timeout=1))[2] == b"x"
        finally:
            await c.close()
    assert len(srv.requests) == 1
    assert "x-injected" not in srv.requests[0].headers


def test_encode_request_post_golden() -> None:
    data = encode_request(
        "POST",
        "/v1/chat?x=1",
        "api.example:8080",
        {"Content-Type": "application/json", "Authorization": "Bearer k"},
        b'{"a":1}',
    )
    assert data == (
        b"POST /v1/chat?x=1 HTTP/1.1\r\n"
        b"Host: api.example:8080\r\n"
        b"Content-Type: application/json\r\n"
        b"Authorization: Bearer k\r\n"
        b"Content-Length: 7\r\n"
        b"\r\n"
        b'{"a":1}'
    )


def test_encode_request_get_golden() -> None:
    data = encode_request("GET", "/", "h", {"Accept-Encoding": "identity"}, b"")
    assert data == b"GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: identity\r\n\r\n"


def test_encode_request_framing_headers_come_from_the_client() -> None:
    data = encode_request(
        "POST",
        "/",
        "h",
        {
            "host": "x",
            "Content-Length": "5",
            "Transfer-Encoding": "chunked",
            "Connection": "close",
            "X-Keep": "1",
        },
        b"",
    )
    # an empty POST still says so; the caller's framing headers are dropped
    assert data == b"POST / HTTP/1.1\r\nHost: h\r\nX-Keep: 1\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "headers", "body"),
    [
        ("HEAD", {}, b""),
        ("GET", {"X-Name": "caf\u00e9 \u2615"}, b""),  # not latin-1
        ("GET", {"Bad:Name": "v"}, b""),
        ("GET", {"X": "a\r\n\r\nGET /evil HTTP/1.1"}, b""),
    ],
    ids=["head", "not-latin-1", "colon-in-name", "smuggled-request"],
)
def test_encode_request_refuses(method: str, headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(ValueError):
        encode_request(method, "/", "h", headers, body)


def test_encode_request_latin1_value_is_kept() -> None:
    data = encode_request("DELETE", "/r", "h", {"X-Name": "caf\u00e9"}, b"")
    assert data == b"DELETE /r HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\r\n\r\n"


@pytest.mark.parametrize(
    ("url", "origin", "target", "host"),
    [
        ("http://example.com", Origin("http", "example.com", 80), "/", "example.com"),
        ("http://example.com/a/b", Origin("http", "example.com", 80), "/a/b", "example.com"),
        ("https://h/x", Origin("https", "h", 443), "/x", "h"),
        ("HTTPS://Example.COM/", Origin("https", "example.com", 443), "/", "example.com"),
        ("http://h:8080/x", Origin("http", "h", 8080), "/x", "h:8080"),
        ("https://h:8443/x", Origin("https", "h", 8443), "/x", "h:8443"),
        ("http://h:80/x", Origin("http", "h", 80), "/x", "h"),
        ("https://h:80/x", Origin("https", "h", 80), "/x", "h:80"),
        ("http://[::1]:8080/v1", Origin("http", "::1", 8080), "/v1", "[::1]:8080"),
        ("https://[2001:db8::1]/", Origin("https", "2001:db8::1", 443), "/", "[2001:db8::1]"),
        ("http://h/p?q=1&r=a%20b", Origin("http", "h", 80), "/p?q=1&r=a%20b", "h"),
        ("http://h?q=1", Origin("http", "h", 80), "/?q=1", "h"),
        ("http://h/p#frag", Origin("http", "h", 80), "/p", "h"),
        ("http://user:pw@h:81/p", Origin("http", "h", 81), "/p", "h:81"),
    ],
)
def test_parse_url(url: str, origin: Origin, target: str, host: str) -> None:
    assert parse_url(url) == (origin, target, host)


def test_parse_url_https_default_port_is_443() -> None:
    origin, _, _ = parse_url("https://h/x")
    assert origin.port == 443
    assert origin.scheme == "https"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "/relative",
        "relative/path",
        "http://",
        "http:///path",
        "",
        "h:80",
        "http://h/a b?x=1 HTTP/1.1",  # request-line smuggling through a space
        "http://h/a\r\nX-Evil: 1",
    ],
)
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


async def test_a_bad_url_raises_value_error_from_request(client: HttpClient) -> None:
    with pytest.raises(ValueError):
        await client.request("GET", "ftp://x/y", {})


# -- https --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (EC, so it is quick to make)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_origin_with_keep_alive(tls_files: tuple[Path, Path]) -> None:
    cert_file, key_file = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cafile=str(cert_file))
    c = HttpClient(ssl_context=client_ctx, connect_timeout=1.0)
    try:
        async with serve(keep_alive(lambda r: ok(r.path.encode())), server_ctx) as srv:
            r1 = await c.fetch("GET", srv.url("/secure", "https"), {}, timeout=1)
            r2 = await c.fetch("GET", srv.url("/again", "https"), {}, timeout=1)
    finally:
        await c.close()
    assert (r1[0], r1[2]) == (200, b"/secure")
    assert (r2[0], r2[2]) == (200, b"/again")
    assert srv.requests[0].headers["host"] == f"127.0.0.1:{srv.port}"
    assert srv.accepted == 1


async def test_https_with_an_untrusted_certificate_is_a_connect_error(
    tls_files: tuple[Path, Path],
) -> None:
    cert_file, key_file = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    c = HttpClient(connect_timeout=1.0)  # the system's trust store does not know our cert
    try:
        async with serve(keep_alive(lambda r: ok(b"x")), server_ctx) as srv:
            with pytest.raises(ConnectError):
                await c.fetch("GET", srv.url("/", "https"), {}, timeout=1)
            assert srv.requests == []
    finally:
        await c.close()


async def test_https_to_a_plain_http_server_is_a_connect_error(client: HttpClient) -> None:
    async def handler(srv: RawServer, reader: Reader, writer: Writer, conn: int) -> None:
        writer.write(ok(b"plain text, not TLS"))
        await writer.drain()
        await reader.read()

    async with serve(handler) as srv:
        with pytest.raises(ConnectError):
            await client.fetch("GET", srv.url("/", "https"), {}, timeout=1)


# -- regressions: bugs found while writing these tests ---------------------------------


async def test_bytes_after_a_complete_answer_in_the_same_read_are_not_merged(
    client: HttpClient,
) -> None:
    # a second, unsolicited answer glued to the first one (one TCP write)
    response = ok(b"hi") + b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nbad"
    async with serve(keep_alive(lambda r: response)) as srv:
        status, headers, body = await client.fetch("GET", srv.url(), {}, timeout=1)
        assert (status, headers.get("content-length"), body) == (200, "2", b"hi")
