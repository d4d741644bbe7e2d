#!/usr/bin/env python3
"""Streaming time-to-first-token probe (wrk only sees whole-response latency).

Adapted from ../shared/bench/loadgen/ttft_probe.py. A raw asyncio HTTP/1.1 keep-alive
client (stdlib only) sends ``--n`` streaming chat requests over ``-c`` connections and
reports, per request: ttfb (status line), ttft (first SSE event whose delta has non-empty
``content``) and total (end of the stream); prints one ``TTFT k=v ...`` line with
p50/p90/p99 of each. A Python client: compare direct and gateway at the same settings.

  ttft_probe.py --url http://127.0.0.1:8080/v1/chat/completions --model M --n 200 -c 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from urllib.parse import urlsplit

CONTENT_RE = re.compile(rb'"delta":\{[^}]*"content":"[^"]')
PROMPT = "Write one short sentence about benchmarking HTTP gateways under load, please."


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100.0 * len(xs) + 0.5) - 1))
    return xs[k]


class Target:
    def __init__(self, args: argparse.Namespace) -> None:
        u = urlsplit(args.url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        body = json.dumps(
            {
                "model": args.model,
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": args.max_tokens,
                "temperature": 0.2,
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
                    {"role": "user", "content": PROMPT},
                ],
            }
        ).encode()
        extra = "".join(h.strip() + "\r\n" for h in args.header)
        head = (
            f"POST {u.path or '/v1/chat/completions'} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {args.key}\r\nAccept: text/event-stream\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n"
        )
        self.request = head.encode() + body


async def read_rest(reader: asyncio.StreamReader, t0: float) -> tuple[float | None, bool]:
    """After the status line: read one whole response; (ttft or None, connection: close?)."""
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode("latin1").partition(":")
        headers[k.strip().lower()] = v.strip().lower()
    ttft = None
    buf = b""
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            data = await reader.readexactly(size + 2)
            if ttft is None:
                buf += data
                if CONTENT_RE.search(buf):
                    ttft = time.perf_counter() - t0
    else:
        buf = await reader.readexactly(int(headers.get("content-length", "0")))
        if CONTENT_RE.search(buf):
            ttft = time.perf_counter() - t0
    return ttft, headers.get("connection") == "close"


async def one_conn(
    target: Target, quota: list[int], out: list[tuple[float, float, float]], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        while quota[0] > 0:
            quota[0] -= 1
            t0 = time.perf_counter()
            writer.write(target.request)
            status = await reader.readline()
            ttfb = time.perf_counter() - t0
            ttft, close = await read_rest(reader, t0)
            total = time.perf_counter() - t0
            if not status.startswith(b"HTTP/1.1 200") or ttft is None:
                errors.append(status.strip().decode("latin1", "replace"))
            else:
                out.append((ttfb, ttft, total))
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(target.host, target.port)
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    target = Target(args)
    conns = range(args.concurrency)
    warm: list[int] = [args.warmup]
    await asyncio.gather(*[one_conn(target, warm, [], []) for _ in conns])
    quota, out, errors = [args.n], [], []
    t0 = time.perf_counter()
    await asyncio.gather(*[one_conn(target, quota, out, errors) for _ in conns])
    wall = time.perf_counter() - t0
    res: dict[str, object] = {
        "n": len(out),
        "errors": len(errors),
        "c": args.concurrency,
        "rps": round(len(out) / wall, 1),
    }
    for i, name in enumerate(("ttfb", "ttft", "total")):
        xs = [o[i] * 1000 for o in out]
        for p in (50, 90, 99):
            res[f"{name}_p{p}_ms"] = round(pct(xs, p), 2)
    if errors:
        res["first_error"] = errors[0].replace(" ", "_")
    print("TTFT " + " ".join(f"{k}={v}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--key", default="sk-bench")
    ap.add_argument("--header", action="append", default=[], help="extra 'K: V' header")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("-c", "--concurrency", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=20)
    asyncio.run(main(ap.parse_args()))
