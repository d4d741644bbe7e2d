#!/usr/bin/env python3
"""Fast OpenAI-compatible mock upstream for gateway benchmarks.

Adapted from the reference harness in ``../shared/bench/mock_upstream.py`` (same wire
behaviour, so numbers are comparable with ``../shared/bench/BASELINE.md``); additions:
``--no-usage`` and lint fixes.

Raw asyncio Protocol + httptools parser + uvloop + orjson (each optional:
falls back to a tiny built-in parser / stdlib asyncio / json when missing).

Endpoints
  POST /v1/chat/completions   non-streaming JSON (with usage block) or SSE
                              when "stream": true; final usage chunk when
                              stream_options.include_usage is true
  POST /v1/embeddings         float list or base64 (encoding_format)
  GET  /v1/models             model list
  GET  /health                "ok"

Options: --port, --host, --delay-ms (fixed latency before the response
headers, per request), --chunks (content chunks per stream),
--chunk-delay-ms (sleep between stream chunks), --embed-dim, --workers
(SO_REUSEPORT processes, default 1), --no-usage (omit the usage block from
non-streaming replies and never send a usage chunk: exercises a gateway's token estimate).

Per-request overrides (handy when a gateway forwards the body untouched):
JSON body fields "mock_delay_ms", "mock_chunks", "mock_chunk_delay_ms".
"""

import argparse
import asyncio
import base64
import os
import socket
import struct
import time
import uuid

try:
    import orjson

    def jdumps(o):
        return orjson.dumps(o)

    jloads = orjson.loads
except ImportError:  # pragma: no cover
    import json

    def jdumps(o):
        return json.dumps(o, separators=(",", ":")).encode()

    jloads = json.loads

try:
    import httptools
except ImportError:  # pragma: no cover
    httptools = None

CFG = argparse.Namespace(usage=True, delay_ms=0.0, chunks=20, chunk_delay_ms=0.0, embed_dim=1536)
WORDS = (
    "The quick brown fox jumps over the lazy dog while the mock "
    "upstream answers every request with deterministic text "
).split()
FP = "fp_mock0001"

_EMB_CACHE = {}
_TASKS: set = set()  # strong references to in-flight slow handlers


def _embedding_payloads(dim):
    if dim not in _EMB_CACHE:
        vals = [((i * 7919) % 2000 - 1000) / 1000.0 for i in range(dim)]
        floats = jdumps(vals)
        b64 = base64.b64encode(struct.pack(f"<{dim}f", *vals)).decode()
        _EMB_CACHE[dim] = (floats, jdumps(b64))
    return _EMB_CACHE[dim]


def _reply_text(n):
    return " ".join(WORDS[i % len(WORDS)] for i in range(n))


def _count_prompt_tokens(req):
    n = 0
    for m in req.get("messages") or ():
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            n += len(c)
        elif isinstance(c, list):
            for part in c:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    n += len(part["text"])
        n += 16  # role/formatting overhead, like tiktoken's ~4 tokens
    return max(1, n // 4)


def _usage(pt, ct):
    return {
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "total_tokens": pt + ct,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _resp(status, body, ctype=b"application/json", keep_alive=True):
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}.get(
        status, b"OK"
    )
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
            % (status, reason, ctype, len(body)),
            b"" if keep_alive else b"connection: close\r\n",
            b"\r\n",
            body,
        )
    )


def _err(status, msg, keep_alive=True):
    return _resp(
        status,
        jdumps(
            {
                "error": {
                    "message": msg,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        ),
        keep_alive=keep_alive,
    )


def chat_nonstream(req):
    model = req.get("model") or "mock-model"
    n = int(req.get("max_tokens") or req.get("max_completion_tokens") or CFG.chunks)
    n = max(1, min(n, CFG.chunks))
    pt = _count_prompt_tokens(req)
    return jdumps(
        {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": FP,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": _reply_text(n), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            **({"usage": _usage(pt, n)} if CFG.usage else {}),
            "service_tier": "default",
        }
    )


def _chunked(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def chat_stream_frames(req, nchunks):
    """Yield SSE events already framed for chunked transfer-encoding."""
    model = req.get("model") or "mock-model"
    so = req.get("stream_options") or {}
    include_usage = CFG.usage and isinstance(so, dict) and bool(so.get("include_usage"))
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    base = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": FP,
        "service_tier": "default",
    }

    def ev(choices, usage_val=False):
        d = dict(base)
        d["choices"] = choices
        if include_usage:
            d["usage"] = usage_val if usage_val is not False else None
        return _chunked(b"data: " + jdumps(d) + b"\n\n")

    yield ev(
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": None,
            }
        ]
    )
    for i in range(nchunks):
        tok = WORDS[i % len(WORDS)] + " "
        yield ev([{"index": 0, "delta": {"content": tok}, "logprobs": None, "finish_reason": None}])
    yield ev([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])
    if include_usage:
        yield ev([], _usage(_count_prompt_tokens(req), nchunks))
    yield _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
)


def embeddings(req):
    inp = req.get("input")
    n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
    dim = int(req.get("dimensions") or CFG.embed_dim)
    floats, b64 = _embedding_payloads(dim)
    vec = b64 if req.get("encoding_format") == "base64" else floats
    items = b",".join(
        b'{"object":"embedding","index":%d,"embedding":%s}' % (i, vec) for i in range(n)
    )
    pt = 0
    for s in inp if isinstance(inp, list) else [inp]:
        pt += max(1, len(s) // 4) if isinstance(s, str) else 1
    model = req.get("model") or "mock-embedding"
    return (
        b'{"object":"list","data":['
        + items
        + b'],"model":'
        + jdumps(model)
        + b',"usage":'
        + jdumps({"prompt_tokens": pt, "total_tokens": pt})
        + b"}"
    )


MODELS_BODY = jdumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"}
            for m in ("mock-model", "gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
        ],
    }
)


class Request:
    __slots__ = ("body", "keep_alive", "method", "path")


class MockProtocol(asyncio.Protocol):
    def __init__(self):
        self.transport = None
        self.queue = []  # requests waiting behind an in-flight async one
        self.busy = False
        self._url = b""
        self._body = []
        self._closed = False
        if httptools is not None:
            self.parser = httptools.HttpRequestParser(self)
        else:
            self.parser = None
            self._buf = b""

    # -- asyncio callbacks -------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc):
        self._closed = True

    def data_received(self, data):
        if self.parser is not None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self.transport.close()
            except Exception:
                self.transport.write(_err(400, "bad request", keep_alive=False))
                self.transport.close()
        else:
            self._fallback_feed(data)

    # -- httptools callbacks ----------------------------------------------
    def on_message_begin(self):
        self._url = b""
        self._body = []

    def on_url(self, url):
        self._url += url

    def on_header(self, name, value):
        if name.lower() == b"expect" and value.lower() == b"100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body):
        self._body.append(body)

    def on_message_complete(self):
        r = Request()
        r.method = self.parser.get_method()
        r.path = self._url.split(b"?", 1)[0]
        r.body = b"".join(self._body)
        r.keep_alive = self.parser.should_keep_alive()
        self._dispatch(r)

    # -- minimal fallback parser (no httptools) -----------------------------
    def _fallback_feed(self, data):
        self._buf += data
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buf[:end].split(b"\r\n")
            method, path, ver = head[0].split(b" ", 2)
            hdrs = {}
            for line in head[1:]:
                k, _, v = line.partition(b":")
                hdrs[k.strip().lower()] = v.strip()
            clen = int(hdrs.get(b"content-length", b"0"))
            if len(self._buf) < end + 4 + clen:
                return
            r = Request()
            r.method, r.path = method, path.split(b"?", 1)[0]
            r.body = self._buf[end + 4 : end + 4 + clen]
            conn = hdrs.get(b"connection", b"").lower()
            r.keep_alive = conn != b"close" and (ver == b"HTTP/1.1" or conn == b"keep-alive")
            self._buf = self._buf[end + 4 + clen :]
            self._dispatch(r)

    # -- routing -------------------------------------------------------------
    def _dispatch(self, r):
        if self.busy:
            self.queue.append(r)
            return
        if not self._handle_fast(r):
            self.busy = True
            task = asyncio.ensure_future(self._slow_worker(r))
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)

    def _handle_fast(self, r):
        """Handle synchronously when no waiting is required. Returns False
        if the request needs the async path (delay or streaming)."""
        t = self.transport
        try:
            req = jloads(r.body) if r.body else {}
            if not isinstance(req, dict):
                req = {}
        except Exception:
            t.write(_err(400, "invalid JSON body", r.keep_alive))
            return self._finish(r)
        p = r.path
        if p.startswith(b"/v1"):
            p = p[3:]
        if r.method == b"POST" and p == b"/chat/completions":
            delay = req.get("mock_delay_ms", CFG.delay_ms)
            if delay or req.get("stream"):
                r.body = req  # parsed
                return False
            t.write(_resp(200, chat_nonstream(req), keep_alive=r.keep_alive))
        elif r.method == b"POST" and p == b"/embeddings":
            delay = req.get("mock_delay_ms", CFG.delay_ms)
            if delay:
                r.body = req
                return False
            t.write(_resp(200, embeddings(req), keep_alive=r.keep_alive))
        elif r.method == b"GET" and p == b"/models":
            t.write(_resp(200, MODELS_BODY, keep_alive=r.keep_alive))
        elif r.method == b"GET" and p in (b"/health", b"/health/liveliness", b"/"):
            t.write(_resp(200, b"ok", b"text/plain", r.keep_alive))
        else:
            t.write(_err(404, "unknown path " + r.path.decode("latin1"), r.keep_alive))
        return self._finish(r)

    def _finish(self, r):
        if not r.keep_alive:
            self.transport.close()
        return True

    async def _slow_worker(self, r):
        try:
            while True:
                await self._handle_slow(r)
                if self._closed or not r.keep_alive:
                    break
                while self.queue:
                    r = self.queue.pop(0)
                    if self._handle_fast(r) is False:
                        break
                else:
                    break
        finally:
            self.busy = False

    async def _handle_slow(self, r):
        req = r.body
        t = self.transport
        delay = float(req.get("mock_delay_ms", CFG.delay_ms) or 0)
        if delay:
            await asyncio.sleep(delay / 1000.0)
        if self._closed:
            return
        p = r.path[3:] if r.path.startswith(b"/v1") else r.path
        if p == b"/embeddings":
            t.write(_resp(200, embeddings(req), keep_alive=r.keep_alive))
        elif not req.get("stream"):
            t.write(_resp(200, chat_nonstream(req), keep_alive=r.keep_alive))
        else:
            n = int(req.get("mock_chunks") or CFG.chunks)
            mt = req.get("max_tokens") or req.get("max_completion_tokens")
            if mt:
                n = max(1, min(n, int(mt)))
            cdelay = float(req.get("mock_chunk_delay_ms", CFG.chunk_delay_ms) or 0) / 1000.0
            head = STREAM_HEAD + (b"\r\n" if r.keep_alive else b"connection: close\r\n\r\n")
            frames = chat_stream_frames(req, n)
            if not cdelay:
                t.write(head + b"".join(frames))
            else:
                t.write(head + next(frames))
                for fr in frames:
                    await asyncio.sleep(cdelay)
                    if self._closed:
                        return
                    t.write(fr)
        if not r.keep_alive:
            t.close()


def serve(args, sock=None):
    try:
        import uvloop

        uvloop.install()
        loopname = "uvloop"
    except ImportError:  # pragma: no cover
        loopname = "asyncio"

    async def main():
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(MockProtocol, sock=sock, backlog=4096)
        else:
            server = await loop.create_server(
                MockProtocol, args.host, args.port, reuse_port=args.workers > 1, backlog=4096
            )
        print(
            f"mock_upstream pid={os.getpid()} listening on {args.host}:{args.port} "
            f"loop={loopname} parser={'httptools' if httptools else 'builtin'} "
            f"delay_ms={args.delay_ms} chunks={args.chunks} "
            f"chunk_delay_ms={args.chunk_delay_ms} usage={CFG.usage}",
            flush=True,
        )
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def cli():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument(
        "--delay-ms", type=float, default=0.0, help="fixed server-side latency per request (ms)"
    )
    ap.add_argument(
        "--chunks",
        type=int,
        default=20,
        help="content chunks per streamed completion and completion tokens of a "
        "non-streamed one (capped by the request's max_tokens)",
    )
    ap.add_argument(
        "--chunk-delay-ms", type=float, default=0.0, help="sleep between streamed chunks (ms)"
    )
    ap.add_argument("--embed-dim", type=int, default=1536)
    ap.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    ap.add_argument("--no-usage", action="store_true", help="never report token usage")
    args = ap.parse_args()
    CFG.usage = not args.no_usage
    CFG.delay_ms, CFG.chunks = args.delay_ms, args.chunks
    CFG.chunk_delay_ms, CFG.embed_dim = args.chunk_delay_ms, args.embed_dim
    _embedding_payloads(CFG.embed_dim)
    if args.workers > 1:
        for _ in range(args.workers - 1):
            if os.fork() == 0:
                break
    serve(args)


if __name__ == "__main__":
    cli()
