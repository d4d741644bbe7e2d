"""CPU cost of a request's usage record, in one run: the request path's part (the cost header of a
non-streamed answer, then ``Gateway.finish``: buckets, the record, pricing, budget settlement,
metrics, the emitter's append) and the
flusher's part (``UsageEmitter._encode``: stamping and serialising one record).

Run it in two checkouts to compare them (issue 15 item 1: the typed record against the dict):
``uv run python bench/record_cost.py`` (prints µs per request, best of 5 runs of 50,000).
On a busy machine, count instructions instead (repeatable whatever else runs):
``bash bench/record_instructions.sh`` runs it under callgrind at two sizes and prints the
instructions per request (the difference over the extra requests).
"""

from __future__ import annotations

import inspect
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from turnout_router.adapters.base import UsageCounts
from turnout_router.app import RouterApp
from turnout_router.auth import Caller
from turnout_router.context import RequestContext
from turnout_router.entities import Deployment, Provider, VirtualKey
from turnout_router.inputs import Inbound
from turnout_router.routing import Candidate
from turnout_router.settings import RouterSettings

N = int(os.environ.get("RECORD_BENCH_N", "50000"))
RUNS = int(os.environ.get("RECORD_BENCH_RUNS", "5"))
PROVIDER = Provider.from_data({"id": "prov-1", "name": "openai", "kind": "openai"}, 1)
DEPLOYMENT = Deployment.from_data(
    {"id": "dep-1", "name": "gpt-4o-mini", "provider_id": "prov-1",
     "input_price_per_mtok": "0.15", "output_price_per_mtok": "0.60"}
)  # fmt: skip
KEY = VirtualKey.from_data({"id": "key-1", "user_id": "user-1", "key_hash": "x"})
CALLER = Caller(KEY, None, "free", 0, frozenset())


def context(i: int) -> RequestContext:
    ctx = RequestContext(f"req_{i}", "chat", "/v1/chat/completions", time.perf_counter(), 1.8e9)
    ctx.caller = CALLER
    ctx.inbound = Inbound("chat", {}, "gpt-4o-mini", prompt_chars=480)
    cand = Candidate(DEPLOYMENT, PROVIDER, False)
    ctx.attempt(cand, 200, None, 3.2)
    ctx.served = cand
    ctx.usage = UsageCounts(120, 40, 0, present=True)
    return ctx


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        os.environ["TURNOUT_STATE_DIR"] = d
        app = RouterApp(RouterSettings(spool_dir=Path(d)))
        gw, emitter = app.gateway, app.emitter
        encode = emitter._encode
        two_args = len(inspect.signature(encode).parameters) == 2  # the dict-record version
        finish, encoded = [], []
        for _ in range(RUNS):
            ctxs = [context(i) for i in range(N)]
            t0 = time.perf_counter()
            for ctx in ctxs:
                ctx.cost()  # the x-turnout-cost-usd header of a non-streamed answer
                gw.finish(ctx)
            finish.append((time.perf_counter() - t0) / N * 1e6)
            buf, emitter._buf = emitter._buf, []
            now = datetime.now(UTC)
            t0 = time.perf_counter()
            if two_args:
                for rec in buf:
                    encode(rec, now)  # type: ignore[call-arg]
            else:
                for rec, trace in buf:
                    encode(rec, trace, now)
            encoded.append((time.perf_counter() - t0) / N * 1e6)
    print(f"| Gateway.finish (request path) | {min(finish):.3f} µs/request |")
    print(f"| UsageEmitter._encode (flusher) | {min(encoded):.3f} µs/request |")
    print(f"| both | {min(finish) + min(encoded):.3f} µs/request |")


if __name__ == "__main__":
    main()
