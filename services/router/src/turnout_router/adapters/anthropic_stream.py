"""Anthropic Messages SSE events → OpenAI ``chat.completion.chunk`` SSE events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .stream_base import Json, TranslatingStream

if TYPE_CHECKING:
    from .translating import TranslatingAdapter


class AnthropicStream(TranslatingStream):
    def __init__(self, wire: TranslatingAdapter, model: str, *, include_usage: bool) -> None:
        super().__init__(wire, model, include_usage=include_usage)
        self._raw_usage: Json = {}
        self._tools: dict[int, int] = {}  # content block index → OpenAI tool_call index

    def _finish_at_close(self) -> bool:
        """A stream cut before ``message_stop`` still finishes if it reported a reason."""
        return not self._finished and self.finish_reason is not None

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
                self.finish_reason = self._wire.finish_reason(reason)
            self._merge_usage(data.get("usage"))
        elif kind == "message_stop" and not self._finished:
            out.extend(self._finish())
        elif kind == "error":
            self._fail(self._wire.stream_error(data.get("error") or {}), out)

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
        self.usage = self._wire.usage_of(merged)
