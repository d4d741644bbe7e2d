"""CPU cost of one whole chat request inside the router, in one process: the RSGI handler
(auth, body, validation, routing, limits and budget, the upstream call over a real socket to
``bench/mock_upstream.py``, the answer) and its settlement (usage record, buckets, metrics).
No HTTP server and no Kafka (the flusher's encoding of each record is counted, its send is
not): what is left is the router's own work per request.

``--limits`` gives the key rpm/tpm limits and its user a budget (``bench/run_limits.sh``'s
``local`` stage); without it the key has neither (the ``none`` stage).

  uv run python bench/request_cost.py [--limits]       # µs per request, best of RUNS
  bash bench/request_instructions.sh                    # instructions per request (callgrind)

Knobs: REQUEST_BENCH_N (requests a run, 2000), REQUEST_BENCH_RUNS (5), REQUEST_BENCH_WARM (200).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from turnout_common.crypto import KeyRing, generate_key, new_virtual_key
from turnout_common.events import ConfigEvent

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from snapshot_server import build_snapshot  # noqa: E402

N = int(os.environ.get("REQUEST_BENCH_N", "2000"))
RUNS = int(os.environ.get("REQUEST_BENCH_RUNS", "5"))
WARM = int(os.environ.get("REQUEST_BENCH_WARM", "200"))
BODY = orjson.dumps(
    {
        "model": "bench-fast",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "Say hello in five words."},
        ],
        "max_tokens": 20,
    }
)


class Scope:
    """The part of Granian's RSGI scope the router reads."""

    __slots__ = ("headers", "method", "path")

    def __init__(self, key: str) -> None:
        self.method = "POST"
        self.path = "/v1/chat/completions"
        self.headers = {
            "authorization": f"Bearer {key}",
            "content-type": "application/json",
            "content-length": str(len(BODY)),
        }


class Proto:
    """The part of Granian's RSGI protocol a non-streamed answer uses."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 0

    async def __call__(self) -> bytes:
        return BODY

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(app: Any, scope: Scope, n: int) -> None:
    for _ in range(n):
        proto = Proto()
        await app.__rsgi__(scope, proto)
        await asyncio.sleep(0)  # settle() runs as a call_soon callback
        if proto.status != 200:
            raise SystemExit(f"status {proto.status}")
        encode(app.emitter)  # the flusher's part: stamping, serialising (and, before the
        # typed record, pricing and settling) each record


def encode(emitter: Any) -> None:
    buf, emitter._buf = emitter._buf, []
    now = datetime.now(UTC)
    for item in buf:
        if isinstance(item, dict):  # the dict-record tree (before issue 15's UsageRecord)
            emitter._encode(item, now)
        else:
            emitter._encode(item[0], item[1], now)


async def main(limits: bool) -> None:
    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        with tempfile.TemporaryDirectory() as d:
            fernet = generate_key()
            os.environ.update(TURNOUT_STATE_DIR=d, TURNOUT_ENCRYPTION_KEYS=fernet)
            from turnout_router.app import RouterApp
            from turnout_router.settings import RouterSettings

            app = RouterApp(RouterSettings(spool_dir=Path(d)))
            key = new_virtual_key()
            base = f"http://127.0.0.1:{port}/v1"
            snap = build_snapshot({"bench-fast": base}, KeyRing([fernet]), key, limits=limits)
            for ent in snap["entities"]:
                app.state.apply_config(ConfigEvent(**ent))
            await app.client.start()
            app.started = True
            scope = Scope(key)
            await serve(app, scope, WARM)
            best = float("inf")
            for _ in range(RUNS):
                t0 = time.process_time()
                await serve(app, scope, N)
                best = min(best, (time.process_time() - t0) / N * 1e6)
            await app.client.close()
    finally:
        mock.terminate()
        mock.wait()
    label = "limits + budget" if limits else "no limits"
    print(f"| router, whole request ({label}) | {best:.1f} µs CPU/request |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", action="store_true")
    asyncio.run(main(ap.parse_args().limits))
