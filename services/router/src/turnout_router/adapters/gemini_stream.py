"""Gemini ``streamGenerateContent?alt=sse`` events → OpenAI ``chat.completion.chunk`` SSE.

Each event is a whole ``GenerateContentResponse``; usage comes from the last event carrying
``usageMetadata``. Gemini has no end event, so the finish and usage chunks go out in
``close()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from turnout_common.errors import TurnoutError

from .base import UsageCounts
from .stream_base import Json, TranslatingStream
from .translation import IdFactory


class GeminiStream(TranslatingStream):
    def __init__(
        self,
        rid: str,
        created: int,
        model: str,
        *,
        include_usage: bool,
        new_id: IdFactory,
        usage_of: Callable[[Any], UsageCounts],
        finish_of: Callable[[Json, bool], str | None],
        error_of: Callable[[Json], TurnoutError],
    ) -> None:
        super().__init__(rid, created, model, include_usage=include_usage)
        self._new_id, self._usage_of = new_id, usage_of
        self._finish_of, self._error_of = finish_of, error_of
        self._tools = 0

    def _event(self, kind: str, data: Json, out: list[bytes]) -> None:
        """``kind`` is unused: every event is a whole response."""
        if isinstance(err := data.get("error"), dict):
            self._fail(self._error_of(err), out)
            return
        self._start(out)
        if data.get("usageMetadata"):
            self.usage = self._usage_of(data["usageMetadata"])
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
                        str(fc.get("id") or self._new_id("call_")),
                        str(fc.get("name")),
                        orjson.dumps(fc.get("args") or {}).decode(),
                    )
                )
                self._tools += 1
        if (reason := self._finish_of(candidate, self._tools > 0)) is not None:
            self.finish_reason = reason
