"""Chat chunks as dicts, for the doors' stream encoders.

An OpenAI-compatible upstream's SSE is parsed once here (:class:`OpenAIChunks`: no
re-encoding to chat bytes in between); any other kind goes through its adapter's translator
and the chat chunks it writes are parsed back (:class:`TranslatedChunks`). ``None`` in a
batch is the end of the stream (``[DONE]``). Both keep the upstream's usage.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from turnout_router.adapters.base import StreamTranslator, UsageCounts, content_chars
from turnout_router.adapters.openai import _usage

Json = dict[str, Any]
Batch = list[Json | None]


class ChunkSource(Protocol):
    usage: UsageCounts
    finish_reason: str | None
    output_chars: int

    def feed(self, data: bytes) -> Batch: ...

    def close(self) -> Batch: ...


def _parse(event: bytes) -> Json | bool | None:
    """A chat SSE event → its chunk, None for ``[DONE]``, False for anything else."""
    if not event.startswith(b"data:"):
        return False
    payload = event[5:].strip()
    if payload == b"[DONE]":
        return None
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return chunk if isinstance(chunk, dict) else False


class OpenAIChunks:
    """An OpenAI-compatible upstream's SSE bytes → chunks; usage from its usage chunk."""

    def __init__(self) -> None:
        self._buf = b""
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.output_chars = 0

    def feed(self, data: bytes) -> Batch:
        buf = self._buf + data if self._buf else data
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        *events, self._buf = buf.split(b"\n\n")
        return self._batch(events)

    def close(self) -> Batch:
        rest, self._buf = self._buf.strip(), b""
        out = self._batch([rest] if rest else [])
        return out if out and out[-1] is None else [*out, None]

    def _batch(self, events: list[bytes]) -> Batch:
        out: Batch = []
        for ev in events:
            chunk = _parse(ev.strip())
            if chunk is False:
                continue
            if chunk is not None:
                assert isinstance(chunk, dict)
                choices = chunk.get("choices")
                if choices:
                    self.output_chars += content_chars(choices)
                    reason = choices[0].get("finish_reason")
                    if reason:
                        self.finish_reason = reason
                if chunk.get("usage"):
                    self.usage = _usage(chunk["usage"])
            out.append(chunk)
        return out


class TranslatedChunks:
    """Another kind's translator (its chat SSE output parsed back); its usage."""

    def __init__(self, inner: StreamTranslator) -> None:
        self.inner = inner
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.output_chars = 0

    def feed(self, data: bytes) -> Batch:
        return self._batch(self.inner.feed(data))

    def close(self) -> Batch:
        return self._batch(self.inner.close())

    def _batch(self, events: list[bytes]) -> Batch:
        inner = self.inner
        self.usage, self.finish_reason = inner.usage, inner.finish_reason
        self.output_chars = inner.output_chars
        out: Batch = []
        for ev in events:
            chunk = _parse(ev)
            if chunk is not False:
                out.append(chunk if isinstance(chunk, dict) else None)
        return out
