"""Anthropic Messages SSE events → OpenAI ``chat.completion.chunk`` SSE events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from turnout_common.errors import TurnoutError

from .base import UsageCounts
from .stream_events import ChunkWriter, SSEDecoder, SSEEvent

Json = dict[str, Any]


class AnthropicStream:
    """One streamed response; ``feed`` takes any byte slices of the upstream body."""

    def __init__(
        self,
        rid: str,
        created: int,
        model: str,
        *,
        include_usage: bool,
        finish_map: Mapping[str, str],
        usage_of: Callable[[Any], UsageCounts],
        error_of: Callable[[Json], TurnoutError],
    ) -> None:
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.error: TurnoutError | None = None
        self._out = ChunkWriter(rid, created, model)
        self._include_usage = include_usage
        self._finish_map, self._usage_of, self._error_of = finish_map, usage_of, error_of
        self._sse = SSEDecoder()
        self._raw_usage: Json = {}
        self._tools: dict[int, int] = {}  # content block index → OpenAI tool_call index
        self._started = self._finished = self._closed = False

    def feed(self, data: bytes) -> list[bytes]:
        return self._handle(self._sse.feed(data))

    def close(self) -> list[bytes]:
        if self._closed:
            return []
        out = self._handle(self._sse.close())
        if not self._finished and self.finish_reason is not None:
            out.extend(self._finish())
        self._closed = True
        out.append(ChunkWriter.done())
        return out

    def _handle(self, events: list[SSEEvent]) -> list[bytes]:
        out: list[bytes] = []
        for ev in events:
            try:
                data = orjson.loads(ev.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict):
                self._event(str(data.get("type") or ev.event), data, out)
        return out

    def _event(self, kind: str, data: Json, out: list[bytes]) -> None:
        if kind == "message_start":
            message = data.get("message") or {}
            if message.get("id"):
                self._out.rid = str(message["id"])
            self._merge_usage(message.get("usage"))
            self._start(out)
        elif kind == "content_block_start":
            self._block_start(int(data.get("index", 0)), data.get("content_block") or {}, out)
        elif kind == "content_block_delta":
            self._block_delta(int(data.get("index", 0)), data.get("delta") or {}, out)
        elif kind == "message_delta":
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reason = self._finish_map.get(str(reason), "stop")
            self._merge_usage(data.get("usage"))
        elif kind == "message_stop" and not self._finished:
            out.extend(self._finish())
        elif kind == "error":
            self.error = self._error_of(data.get("error") or {})
            out.append(ChunkWriter.error(self.error))

    def _start(self, out: list[bytes]) -> None:
        if not self._started:
            self._started = True
            out.append(self._out.role())

    def _block_start(self, index: int, block: Json, out: list[bytes]) -> None:
        self._start(out)
        if block.get("type") == "tool_use":
            tool_index = len(self._tools)
            self._tools[index] = tool_index
            out.append(
                self._out.tool_start(tool_index, str(block.get("id")), str(block.get("name")))
            )
        elif block.get("type") == "text" and block.get("text"):
            out.append(self._out.content(str(block["text"])))

    def _block_delta(self, index: int, delta: Json, out: list[bytes]) -> None:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            self._start(out)
            out.append(self._out.content(str(delta["text"])))
        elif kind == "input_json_delta" and index in self._tools and delta.get("partial_json"):
            out.append(self._out.tool_args(self._tools[index], str(delta["partial_json"])))

    def _merge_usage(self, raw: Any) -> None:
        """message_start carries input usage, message_delta cumulative output usage."""
        if not isinstance(raw, dict):
            return
        merged = {**self._raw_usage, **{k: v for k, v in raw.items() if v is not None}}
        self._raw_usage = merged
        self.usage = self._usage_of(merged)

    def _finish(self) -> list[bytes]:
        self._finished = True
        self.finish_reason = self.finish_reason or "stop"
        out = [self._out.finish(self.finish_reason)]
        if self._include_usage and self.usage.present:
            out.append(self._out.usage(self.usage))
        return out
