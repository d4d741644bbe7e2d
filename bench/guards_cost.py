"""CPU cost of the router's per-request input checks (parse + kept headers), in µs/request.

Times what the request path does with a body and its headers before routing:
``turnout_router.inputs.parse`` (which calls the text checks of ``turnout_router.guards``)
and the reading of the kept headers. Run it on two trees to compare them, in the same minute:

    uv run python bench/guards_cost.py          # this tree
    PYTHONPATH=$OTHER/services/router/src:$OTHER/libs/common/src \
        uv run python bench/guards_cost.py      # another checkout ($OTHER)

A tree without ``guards.kept_headers`` reads the headers with plain ``get`` (what it did).
Each figure is the best of ``ROUNDS`` rounds of ``N`` calls (least disturbed by other load).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import orjson

from turnout_router import inputs

try:
    from turnout_router.guards import kept_headers
except ImportError:  # a tree from before the guards module

    def kept_headers(h: Any) -> tuple[Any, Any]:
        return h.get("x-power-level"), h.get("x-task-type")


N = int(os.environ.get("N", "20000"))
ROUNDS = int(os.environ.get("ROUNDS", "7"))

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. " * 8},
    {"role": "user", "content": "Summarise the following text in two sentences. " * 12},
    {"role": "assistant", "content": "Here is a summary of the text you sent. " * 6},
    {"role": "user", "content": "Thanks, now in French please."},
]
PLAIN = orjson.dumps({"model": "bench-fast", "messages": MESSAGES, "max_tokens": 256})
TAGGED = orjson.dumps(
    {
        "model": "bench-fast",
        "messages": MESSAGES,
        "max_tokens": 256,
        "user": "user-4711@example.com",
        "metadata": {"team": "search", "feature": "summaries", "session": "s-0123456789"},
    }
)
NO_HEADERS: dict[str, str] = {"authorization": "Bearer tk-x", "content-type": "application/json"}
KEPT = {**NO_HEADERS, "x-power-level": "eco", "x-task-type": "summarise", "x-turnout-source": "lab"}


def best_us(fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(N):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / N * 1e6


def main() -> None:
    rows = [
        ("parse, plain chat body (1.6 KB)", lambda: inputs.parse("chat", PLAIN)),
        ("parse, body with user + metadata", lambda: inputs.parse("chat", TAGGED)),
        ("kept headers, none sent", lambda: kept_headers(NO_HEADERS)),
        ("kept headers, all three sent", lambda: kept_headers(KEPT)),
    ]
    print(f"tree: {os.path.dirname(inputs.__file__)}  (N={N}, best of {ROUNDS})")
    for name, fn in rows:
        print(f"{name:<36} {best_us(fn):8.3f} µs")


if __name__ == "__main__":
    main()
