"""CPU cost of the per-request transforms of the ingress doors and the translating adapters,
in one run: what a request through ``/v1/messages`` or ``/v1/responses`` (native and
translated) and through each adapter (request, answer, stream) spends in pure Python.

``uv run python bench/ingress_cost.py`` prints µs per request (best of 5 runs of 5,000
requests, eight kinds in turn); on a busy machine count instructions instead:
``SCRIPT=bench/ingress_cost.py bash bench/record_instructions.sh`` (callgrind at two sizes,
the difference over the extra requests). The inputs are the adapters' golden fixtures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from turnout_router.adapters import anthropic, cohere, gemini, openai
from turnout_router.adapters.base import Adapter, UpstreamTarget
from turnout_router.ingress.door import Ingress
from turnout_router.ingress.messages_door import MESSAGES
from turnout_router.ingress.responses_door import RESPONSES

N = int(os.environ.get("RECORD_BENCH_N", "5000"))
RUNS = int(os.environ.get("RECORD_BENCH_RUNS", "5"))
FIX = Path(__file__).parent.parent / "services/router/tests/adapters/fixtures"
Case = Callable[[], int]
HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


def _raw(path: str) -> bytes:
    return (FIX / path).read_bytes()


def _sse(events: list[dict[str, Any]], named: bool = True) -> bytes:
    return b"".join(
        (b"event: " + str(e["type"]).encode() + b"\n" if named else b"")
        + b"data: "
        + orjson.dumps(e)
        + b"\n\n"
        for e in events
    )


def _slices(data: bytes, size: int = 64) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


TARGETS = {
    "anthropic": UpstreamTarget("anthropic", "", "claude-up", "sk-ant"),
    "cohere": UpstreamTarget("cohere", "", "command-r", "co-key"),
    "google": UpstreamTarget("google", "", "gemini-2.0-flash", "g-key"),
    "openai": UpstreamTarget("openai", "", "gpt-4o-mini", "sk-openai"),
}
INNER: dict[str, Adapter] = {
    "anthropic": anthropic.ADAPTER,
    "cohere": cohere.ADAPTER,
    "google": gemini.ADAPTER,
    "openai": openai.ADAPTER,
}
ANSWERS = {
    "anthropic": _raw("anthropic/response_tool.json"),
    "cohere": _raw("cohere/response_tool.json"),
    "google": _raw("gemini/response_tool.json"),
}
STREAMS = {
    "anthropic": _slices(_raw("anthropic/stream_tool.sse")),
    "cohere": _slices(_raw("cohere/stream_tool.sse")),
    "google": _slices(_raw("gemini/stream_tool.sse")),
}
CHAT = _raw("anthropic/chat_request.openai.json")
OPENAI_CHUNKS = [
    {"id": "c1", "model": "up", "choices": [{"index": 0, "delta": {"content": f"word{i} "}}]}
    for i in range(20)
]
OPENAI_CHUNKS.append(
    {"id": "c1", "model": "up", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
)
OPENAI_CHUNKS.append({"id": "c1", "model": "up", "choices": [], "usage": {"prompt_tokens": 9}})
STREAMS["openai"] = _slices(_sse(OPENAI_CHUNKS, named=False) + b"data: [DONE]\n\n")
ANSWERS["openai"] = orjson.dumps(
    {"id": "c1", "model": "up", "choices": [{"message": {"content": "hi"}}], "usage": {}}
)

MESSAGES_BODY = orjson.dumps(
    {
        "model": "claude",
        "max_tokens": 256,
        "system": "be brief",
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": "sunny"}]},
        ],
        "tools": [{"name": "w", "input_schema": {"type": "object"}}],
    }
)  # fmt: skip
RESPONSES_BODY = orjson.dumps(
    {
        "model": "gpt",
        "instructions": "be brief",
        "input": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
        "max_output_tokens": 256,
    }
)
NATIVE_MESSAGES_SSE = _slices(
    _sse(
        [{"type": "message_start", "message": {"id": "m", "model": "up",
                                               "usage": {"input_tokens": 9, "output_tokens": 1}}}]
        + [{"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": f"word{i} "}} for i in range(20)]
        + [{"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 21}}, {"type": "message_stop"}]
    )
)  # fmt: skip
NATIVE_RESPONSES_SSE = _slices(
    _sse(
        [{"type": "response.created", "response": {"id": "r", "model": "up"}}]
        + [{"type": "response.output_text.delta", "item_id": "m", "delta": f"word{i} "}
           for i in range(20)]
        + [{"type": "response.completed", "response": {"id": "r", "model": "up",
            "status": "completed", "usage": {"input_tokens": 9, "output_tokens": 21}}}]
    )
)  # fmt: skip
NATIVE_ANSWERS = {
    "anthropic": _raw("anthropic/response_tool.json"),
    "openai": orjson.dumps(
        {"id": "r", "model": "up", "output": [], "usage": {"input_tokens": 1, "output_tokens": 1}}
    ),
}


def _run(adapter: Adapter, kind: str, body: dict[str, Any], answer: bytes, sse: list[bytes]) -> int:
    adapter.prepare("chat", body, TARGETS[kind], stream=True)
    out, _ = adapter.parse("chat", answer, "public")
    n = adapter.output_chars(out)
    tr = adapter.stream("public", include_usage=True)
    for piece in sse:
        n += len(tr.feed(piece))
    return n + len(tr.close())


def _door(ingress: Ingress, raw: bytes, kind: str, answer: bytes, sse: list[bytes]) -> Case:
    def case() -> int:
        door = ingress.open(raw, HEADERS)
        return _run(door.adapter(kind, INNER[kind]), kind, door.inbound.body, answer, sse)

    return case


def _plain(kind: str) -> Case:
    return lambda: _run(INNER[kind], kind, orjson.loads(CHAT), ANSWERS[kind], STREAMS[kind])


CASES: list[Case] = [
    *(_plain(kind) for kind in INNER),  # the adapters alone (chat completions)
    _door(MESSAGES, MESSAGES_BODY, "anthropic", NATIVE_ANSWERS["anthropic"], NATIVE_MESSAGES_SSE),
    _door(RESPONSES, RESPONSES_BODY, "openai", NATIVE_ANSWERS["openai"], NATIVE_RESPONSES_SSE),
    _door(MESSAGES, MESSAGES_BODY, "google", ANSWERS["google"], STREAMS["google"]),
    _door(RESPONSES, RESPONSES_BODY, "cohere", ANSWERS["cohere"], STREAMS["cohere"]),
]
"""Eight kinds of request, run in turn (the callgrind sizes, 1,000 and 5,000, are multiples)."""


def main() -> None:
    best = float("inf")
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for i in range(N):
            CASES[i % len(CASES)]()
        best = min(best, (time.perf_counter() - t0) / N * 1e6)
    print(f"| ingress doors + adapters (pure transforms) | {best:.1f} µs/request |")


if __name__ == "__main__":
    main()
