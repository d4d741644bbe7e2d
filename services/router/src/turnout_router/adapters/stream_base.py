"""The skeleton shared by the translating stream adapters (Anthropic, Gemini, Cohere).

It owns the state and the bookkeeping every translator has: SSE decoding of the upstream
bytes, JSON payloads, the role chunk once, the finish (+ usage) chunk once, ``[DONE]`` once.
A subclass only says what one upstream event means, in :meth:`TranslatingStream._event`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import orjson

from turnout_common.errors import TurnoutError

from .base import UsageCounts
from .stream_events import ChunkWriter, SSEDecoder, SSEEvent

if TYPE_CHECKING:
    from .translating import TranslatingAdapter

Json = dict[str, Any]


class TranslatingStream(ABC):
    """One streamed response; ``feed`` takes any byte slices of the upstream body. ``wire``
    (the adapter) reads the upstream's usage, finish reasons and errors."""

    def __init__(self, wire: TranslatingAdapter, model: str, *, include_usage: bool) -> None:
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.error: TurnoutError | None = None
        self._wire = wire
        self._out = ChunkWriter(wire.new_id("chatcmpl-"), wire.clock(), model)
        self._include_usage = include_usage
        self._sse = SSEDecoder()
        self._started = self._finished = self._closed = False

    @property
    def output_chars(self) -> int:
        return self._out.chars

    def feed(self, data: bytes) -> list[bytes]:
        return self._handle(self._sse.feed(data))

    def close(self) -> list[bytes]:
        if self._closed:
            return []
        out = self._handle(self._sse.close())
        self._closed = True
        if self._finish_at_close():
            out.extend(self._finish())
        out.append(ChunkWriter.done())
        return out

    @abstractmethod
    def _event(self, kind: str, data: Json, out: list[bytes]) -> None:
        """One upstream JSON object; ``kind`` is its ``type``, else the SSE ``event:`` name."""

    def _finish_at_close(self) -> bool:
        """Whether ``close`` still owes the finish chunk (default: the stream started and
        neither finished nor failed)."""
        return self._started and not self._finished and self.error is None

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

    def _start(self, out: list[bytes]) -> None:
        if not self._started:
            self._started = True
            out.append(self._out.role())

    def _fail(self, err: TurnoutError, out: list[bytes]) -> None:
        self.error = err
        out.append(ChunkWriter.error(err))

    def _finish(self) -> list[bytes]:
        self._finished = True
        self.finish_reason = self.finish_reason or "stop"
        out = [self._out.finish(self.finish_reason)]
        if self._include_usage and self.usage.present:
            out.append(self._out.usage(self.usage))
        return out
