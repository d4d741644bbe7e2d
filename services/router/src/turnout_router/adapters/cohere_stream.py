"""Cohere v2 chat SSE events → OpenAI ``chat.completion.chunk`` SSE events.

Events: ``message-start``, ``content-start/delta/end``, ``tool-plan-delta``,
``tool-call-start/delta/end``, ``citation-*``, ``message-end`` (finish reason + usage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from turnout_common.errors import TurnoutError

from .base import UsageCounts
from .stream_base import Json, TranslatingStream


class CohereStream(TranslatingStream):
    def __init__(
        self,
        rid: str,
        created: int,
        model: str,
        *,
        include_usage: bool,
        finish_map: Mapping[str, str],
        usage_of: Callable[[Any], UsageCounts],
        error_of: Callable[[str], TurnoutError],
    ) -> None:
        super().__init__(rid, created, model, include_usage=include_usage)
        self._finish_map, self._usage_of, self._error_of = finish_map, usage_of, error_of
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
                self._fail(self._error_of(str(delta["error"])), out)
                return
            reason = delta.get("finish_reason")
            self.finish_reason = self._finish_map.get(str(reason), "stop")
            self.usage = self._usage_of(delta.get("usage"))
            self._start(out)
            out.extend(self._finish())
