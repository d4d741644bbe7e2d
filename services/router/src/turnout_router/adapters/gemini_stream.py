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
from .stream_events import ChunkWriter, SSEDecoder, SSEEvent
from .translation import IdFactory

Json = dict[str, Any]


class GeminiStream:
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
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.error: TurnoutError | None = None
        self._out = ChunkWriter(rid, created, model)
        self._include_usage = include_usage
        self._new_id, self._usage_of = new_id, usage_of
        self._finish_of, self._error_of = finish_of, error_of
        self._sse = SSEDecoder()
        self._tools = 0
        self._started = self._closed = False

    def feed(self, data: bytes) -> list[bytes]:
        return self._handle(self._sse.feed(data))

    def close(self) -> list[bytes]:
        if self._closed:
            return []
        out = self._handle(self._sse.close())
        self._closed = True
        if self._started and self.error is None:
            self.finish_reason = self.finish_reason or "stop"
            out.append(self._out.finish(self.finish_reason))
            if self._include_usage and self.usage.present:
                out.append(self._out.usage(self.usage))
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
                self._response(data, out)
        return out

    def _response(self, data: Json, out: list[bytes]) -> None:
        if isinstance(err := data.get("error"), dict):
            self.error = self._error_of(err)
            out.append(ChunkWriter.error(self.error))
            return
        if not self._started:
            self._started = True
            out.append(self._out.role())
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
