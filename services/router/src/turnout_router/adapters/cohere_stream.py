"""Cohere v2 chat SSE events → OpenAI ``chat.completion.chunk`` SSE events.

Events: ``message-start``, ``content-start/delta/end``, ``tool-plan-delta``,
``tool-call-start/delta/end``, ``citation-*``, ``message-end`` (finish reason + usage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .stream_base import Json, TranslatingStream

if TYPE_CHECKING:
    from .translating import TranslatingAdapter


class CohereStream(TranslatingStream):
    def __init__(self, wire: TranslatingAdapter, model: str, *, include_usage: bool) -> None:
        super().__init__(wire, model, include_usage=include_usage)
        self._tools: dict[int, int] = {}  # Cohere tool-call index → OpenAI tool_call index

    def _event(self, kind: str, data: Json, out: list[bytes]) -> None:
        message: Json = (data.get("delta") or {}).get("message") or {}
        if kind == "message-start":
            if data.get("id"):
                self._out.rid = str(data["id"])
            self._start(out)
        elif kind == "content-delta":
            text = (message.get("content") or {}).get("text")
            if text:
                self._start(out)
                out.append(self._out.content(str(text)))
        elif kind == "tool-call-start":
            self._start(out)
            call: Json = message.get("tool_calls") or {}
            fn: Json = call.get("function") or {}
            index = len(self._tools)
            self._tools[int(data.get("index", index))] = index
            out.append(
                self._out.tool_start(
                    index, str(call.get("id")), str(fn.get("name")), str(fn.get("arguments") or "")
                )
            )
        elif kind == "tool-call-delta":
            args = ((message.get("tool_calls") or {}).get("function") or {}).get("arguments")
            slot = self._tools.get(int(data.get("index", 0)))
            if args and slot is not None:
                out.append(self._out.tool_args(slot, str(args)))
        elif kind == "message-end":
            delta: Json = data.get("delta") or {}
            if delta.get("error"):
                self._fail(self._wire.stream_error(delta["error"]), out)
                return
            reason = delta.get("finish_reason")
            self.finish_reason = self._wire.finish_reason(reason)
            self.usage = self._wire.usage_of(delta.get("usage"))
            self._start(out)
            out.extend(self._finish())
