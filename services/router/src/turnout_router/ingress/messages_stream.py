"""Anthropic Messages stream events: from our chat chunks (any upstream kind), or passed
through from an Anthropic upstream. Both are pure translators over SSE bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_router.adapters.anthropic import usage_of
from turnout_router.adapters.base import UsageCounts

from .chunks import Batch, ChunkSource
from .messages import STOP_REASON, error_body, usage_body

Json = dict[str, Any]
Shown = Callable[[UsageCounts, int], UsageCounts]
"""(the upstream's usage, output characters) → the usage the client is shown."""


def event(kind: str, data: Json) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(err: TurnoutError) -> bytes:
    return event("error", error_body(err))


class MessagesEncoder:
    """Chat chunks (what ``inner`` yields) → ``message_start``, ``content_block_*``,
    ``message_delta`` (with the upstream's usage), ``message_stop``."""

    def __init__(
        self, source: ChunkSource, mid: str, model: str, shown: Shown | None = None
    ) -> None:
        self.source = source
        self._shown = shown
        self._mid, self._model = mid, model
        self._started = self._stopped = False
        self._block = -1  # index of the open content block, -1 when none is open
        self._kind = ""  # "text" or "tool_use"
        self._tools: dict[int, int] = {}  # chat tool_call index → content block index
        self._next = 0
        self._reason: str | None = None

        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.output_chars = 0

    def feed(self, data: bytes) -> list[bytes]:
        return self._encode(self.source.feed(data))

    def close(self) -> list[bytes]:
        return self._encode(self.source.close())

    def _encode(self, chunks: Batch) -> list[bytes]:
        src = self.source  # its usage (the upstream's counts) is the stream's usage
        self.usage, self.finish_reason, self.output_chars = (
            src.usage,
            src.finish_reason,
            src.output_chars,
        )
        out: list[bytes] = []
        for chunk in chunks:
            if chunk is None:
                self._stop(out)
            else:
                self._chunk(chunk, out)
        return out

    def _chunk(self, chunk: Json, out: list[bytes]) -> None:
        if self._stopped:
            return
        err = chunk.get("error")
        if isinstance(err, dict):  # an upstream error mid-stream (already public text)
            body = {"type": "error", "error": {"type": "api_error", "message": err.get("message")}}
            out.append(event("error", body))
            self._stopped = True
            return
        self._start(out)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._kind != "text":
                    self._open({"type": "text", "text": ""}, "text", out)
                out.append(self._delta({"type": "text_delta", "text": text}))
            for tc in delta.get("tool_calls") or ():
                self._tool(tc, out)
            if choice.get("finish_reason"):
                self._reason = str(choice["finish_reason"])
                self._close(out)

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

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
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

    def _stop(self, out: list[bytes]) -> None:
        if self._stopped:
            return
        self._start(out)
        self._close(out)
        self._stopped = True
        reason = STOP_REASON.get(self._reason or "stop", "end_turn")
        delta = {"stop_reason": reason, "stop_sequence": None}
        usage = self.source.usage
        if self._shown is not None:  # the router's estimate when the upstream gave no counts
            usage = self._shown(usage, self.source.output_chars)
        data = {"type": "message_delta", "delta": delta, "usage": usage_body(usage)}
        out.append(event("message_delta", data))
        out.append(event("message_stop", {"type": "message_stop"}))


class NativeMessagesStream:
    """An Anthropic upstream's events, passed through: only ``message.model`` is rewritten
    (to the public name); usage is read from ``message_start`` and ``message_delta``."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._buf = b""
        self._raw_usage: Json = {}
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.output_chars = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        *events, self._buf = buf.split(b"\n\n")
        return [out for ev in events if (out := self._event(ev)) is not None]

    def close(self) -> list[bytes]:
        rest, self._buf = self._buf.strip(), b""
        out = self._event(rest) if rest else None
        return [out] if out is not None else []

    def _event(self, ev: bytes) -> bytes | None:
        if not ev.strip():
            return None
        at = ev.find(b"data:")
        if at < 0:
            return ev + b"\n\n"
        try:
            data = orjson.loads(ev[at + 5 :])
        except orjson.JSONDecodeError:
            return ev + b"\n\n"
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            self.output_chars += len(delta.get("text") or delta.get("partial_json") or "")
            return ev + b"\n\n"
        if kind == "message_start":
            message = data.get("message") or {}
            self._merge(message.get("usage"))
            if "model" in message:
                message["model"] = self._model
                return ev[:at] + b"data: " + orjson.dumps(data) + b"\n\n"
        elif kind == "message_delta":
            self._merge(data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reason = str(reason)
        return ev + b"\n\n"

    def _merge(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._raw_usage.update({k: v for k, v in raw.items() if v is not None})
            self.usage = usage_of(self._raw_usage)
