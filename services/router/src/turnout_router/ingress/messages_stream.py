"""Anthropic Messages stream events: from our chat chunks (any upstream kind), or passed
through from an Anthropic upstream. Both are pure translators over SSE bytes."""

from __future__ import annotations

from typing import Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_router.adapters.anthropic import usage_of
from turnout_router.adapters.base import UsageCounts

from .chunks import ChunkSource
from .messages import STOP_REASON, error_body, usage_body
from .streams import ChunkEncoder, NativeStream, Shown

Json = dict[str, Any]


def event(kind: str, data: Json) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(err: TurnoutError) -> bytes:
    return event("error", error_body(err))


class MessagesEncoder(ChunkEncoder):
    """Chat chunks (what ``source`` yields) → ``message_start``, ``content_block_*``,
    ``message_delta`` (with the upstream's usage), ``message_stop``."""

    def __init__(
        self, source: ChunkSource, mid: str, model: str, shown: Shown | None = None
    ) -> None:
        super().__init__(source, shown)
        self._mid, self._model = mid, model
        self._block = -1  # index of the open content block, -1 when none is open
        self._kind = ""  # "text" or "tool_use"
        self._tools: dict[int, int] = {}  # chat tool_call index → content block index
        self._next = 0

    def _fail(self, err: Json, out: list[bytes]) -> None:
        body = {"type": "error", "error": {"type": "api_error", "message": err.get("message")}}
        out.append(event("error", body))

    def _text(self, text: str, out: list[bytes]) -> None:
        if self._kind != "text":
            self._open({"type": "text", "text": ""}, "text", out)
        delta = {"type": "text_delta", "text": text}  # one per upstream chunk: no _delta call
        data = {"type": "content_block_delta", "index": self._block, "delta": delta}
        out.append(event("content_block_delta", data))

    def _tool(self, tc: Json, out: list[bytes]) -> None:
        idx = int(tc.get("index", 0))
        fn = tc.get("function") or {}
        if idx not in self._tools:
            block = {"type": "tool_use", "id": str(tc.get("id") or ""), "input": {}}
            block["name"] = str(fn.get("name") or "")
            self._open(block, "tool_use", out)
            self._tools[idx] = self._block
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            if self._tools[idx] != self._block:
                return  # interleaved arguments of an earlier call: Anthropic cannot say that
            out.append(self._delta({"type": "input_json_delta", "partial_json": args}))

    def _begin(self, out: list[bytes]) -> None:
        message: Json = {
            "id": self._mid,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(event("message_start", {"type": "message_start", "message": message}))
        out.append(event("ping", {"type": "ping"}))

    def _open(self, block: Json, kind: str, out: list[bytes]) -> None:
        self._close(out)
        self._block, self._kind = self._next, kind
        self._next += 1
        data = {"type": "content_block_start", "index": self._block, "content_block": block}
        out.append(event("content_block_start", data))

    def _delta(self, delta: Json) -> bytes:
        data = {"type": "content_block_delta", "index": self._block, "delta": delta}
        return event("content_block_delta", data)

    def _close(self, out: list[bytes]) -> None:
        if self._block >= 0:
            data = {"type": "content_block_stop", "index": self._block}
            out.append(event("content_block_stop", data))
            self._block, self._kind = -1, ""

    def _end(self, usage: UsageCounts, out: list[bytes]) -> None:
        reason = STOP_REASON.get(self._reason or "stop", "end_turn")
        delta = {"stop_reason": reason, "stop_sequence": None}
        data = {"type": "message_delta", "delta": delta, "usage": usage_body(usage)}
        out.append(event("message_delta", data))
        out.append(event("message_stop", {"type": "message_stop"}))


class NativeMessagesStream(NativeStream):
    """An Anthropic upstream's events, passed through: only ``message.model`` is rewritten
    (to the public name); usage is read from ``message_start`` and ``message_delta``."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self._raw_usage: Json = {}

    def _read(self, data: Json) -> bool:
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            self.output_chars += len(delta.get("text") or delta.get("partial_json") or "")
        elif kind == "message_start":
            message = data.get("message") or {}
            self._merge(message.get("usage"))
            if "model" in message:
                message["model"] = self._model
                return True
        elif kind == "message_delta":
            self._merge(data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reason = str(reason)
        return False

    def _merge(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._raw_usage.update({k: v for k, v in raw.items() if v is not None})
            self.usage = usage_of(self._raw_usage)
