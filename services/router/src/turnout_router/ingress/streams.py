"""The doors' two stream skeletons, pure translators over SSE bytes.

:class:`ChunkEncoder`: chat chunks (from a :class:`.chunks.ChunkSource`) → the client API's
events. It walks the chunks (text, tool-call pieces, the finish reason, an upstream error) and
ends the stream once with the usage the client is shown; a subclass says what each of those
becomes in its API. :class:`NativeStream`: a native upstream's events relayed as they came; a
subclass reads usage and rewrites the model name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import orjson

from turnout_router.adapters.base import UsageCounts
from turnout_router.adapters.stream_events import Relay

from .chunks import Batch, ChunkSource

Json = dict[str, Any]
Shown = Callable[[UsageCounts, int], UsageCounts]
"""(the upstream's usage, output characters) → the usage the client is shown."""


class ChunkEncoder(ABC):
    """One stream: ``feed`` / ``close`` take the upstream's bytes, give the client's events.
    The source's usage (the upstream's counts) is the stream's usage."""

    def __init__(self, source: ChunkSource, shown: Shown | None = None) -> None:
        self.source = source
        self.shown = shown
        """The router's estimate when the upstream gave no counts (None: the counts as
        they came)."""
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.output_chars = 0
        self._started = self._stopped = False
        self._reason: str | None = None  # the chat finish reason

    def feed(self, data: bytes) -> list[bytes]:
        return self._encode(self.source.feed(data))

    def close(self) -> list[bytes]:
        return self._encode(self.source.close())

    def _encode(self, chunks: Batch) -> list[bytes]:
        src = self.source
        self.usage, self.finish_reason, self.output_chars = (
            src.usage,
            src.finish_reason,
            src.output_chars,
        )
        out: list[bytes] = []
        for chunk in chunks:
            if chunk is None:
                self._stop(out)
            elif not self._stopped:
                self._chunk(chunk, out)
        return out

    def _chunk(self, chunk: Json, out: list[bytes]) -> None:
        err = chunk.get("error")
        if isinstance(err, dict):  # an upstream error mid-stream (already public text)
            self._stopped = True
            self._fail(err, out)
            return
        self._start(out)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                self._text(text, out)
            for tc in delta.get("tool_calls") or ():
                self._tool(tc, out)
            if choice.get("finish_reason"):
                self._reason = str(choice["finish_reason"])
                self._close(out)

    def _start(self, out: list[bytes]) -> None:
        if not self._started:
            self._started = True
            self._begin(out)

    def _stop(self, out: list[bytes]) -> None:
        if self._stopped:
            return
        self._start(out)
        self._close(out)
        self._stopped = True
        usage = self.source.usage
        if self.shown is not None:
            usage = self.shown(usage, self.source.output_chars)
        self._end(usage, out)

    @abstractmethod
    def _begin(self, out: list[bytes]) -> None:
        """The events that open the stream (before the first content)."""

    @abstractmethod
    def _text(self, text: str, out: list[bytes]) -> None:
        """A piece of the answer's text."""

    @abstractmethod
    def _tool(self, tc: Json, out: list[bytes]) -> None:
        """A piece of a tool call (a chat ``tool_calls`` delta)."""

    @abstractmethod
    def _close(self, out: list[bytes]) -> None:
        """Close the content block / output item being streamed, if any."""

    @abstractmethod
    def _fail(self, err: Json, out: list[bytes]) -> None:
        """The upstream's error mid-stream: the last event the client gets."""

    @abstractmethod
    def _end(self, usage: UsageCounts, out: list[bytes]) -> None:
        """The events that end the stream, with the usage the client is shown."""


class NativeStream(Relay, ABC):
    """The upstream's SSE events relayed as they came; an event whose payload
    :meth:`_read` rewrote (the model name) is serialised again."""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        *events, self._buf = buf.split(b"\n\n")
        out: list[bytes] = []
        for ev in events:  # a loop, not a comprehension: no frame per feed (CPython 3.11)
            if (relayed := self._event(ev)) is not None:
                out.append(relayed)
        return out

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
        if isinstance(data, dict) and self._read(data):
            return ev[:at] + b"data: " + orjson.dumps(data) + b"\n\n"
        return ev + b"\n\n"

    @abstractmethod
    def _read(self, data: Json) -> bool:
        """One event's payload: count its text, take its usage and finish reason; True when
        it was changed (the model name) and must be sent re-serialised."""
