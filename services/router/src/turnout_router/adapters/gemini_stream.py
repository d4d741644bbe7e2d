"""Gemini ``streamGenerateContent?alt=sse`` events → OpenAI ``chat.completion.chunk`` SSE.

Each event is a whole ``GenerateContentResponse``; usage comes from the last event carrying
``usageMetadata``. Gemini has no end event, so the finish and usage chunks go out in
``close()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from .stream_base import Json, TranslatingStream

if TYPE_CHECKING:
    from .gemini import GeminiAdapter


class GeminiStream(TranslatingStream):
    _wire: GeminiAdapter

    def __init__(self, wire: GeminiAdapter, model: str, *, include_usage: bool) -> None:
        super().__init__(wire, model, include_usage=include_usage)
        self._tools = 0

    def _event(self, kind: str, data: Json, out: list[bytes]) -> None:
        """``kind`` is unused: every event is a whole response."""
        if isinstance(err := data.get("error"), dict):
            self._fail(self._wire.stream_error(err), out)
            return
        self._start(out)
        if data.get("usageMetadata"):
            self.usage = self._wire.usage_of(data["usageMetadata"])
        candidates = data.get("candidates") or []
        if not candidates:
            if (data.get("promptFeedback") or {}).get("blockReason"):
                self.finish_reason = "content_filter"
            return
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("text") and not part.get("thought"):
                out.append(self._out.content(str(part["text"])))
            elif isinstance(fc := part.get("functionCall"), dict):
                out.append(
                    self._out.tool_start(
                        self._tools,
                        str(fc.get("id") or self._wire.new_id("call_")),
                        str(fc.get("name")),
                        orjson.dumps(fc.get("args") or {}).decode(),
                    )
                )
                self._tools += 1
        if (reason := self._wire.finish_of(candidate, self._tools > 0)) is not None:
            self.finish_reason = reason
