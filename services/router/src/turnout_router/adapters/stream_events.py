"""Streaming pieces shared by the adapters and the doors: an incremental SSE decoder that
survives arbitrary byte boundaries, the state of a passthrough (:class:`Relay`), and a
builder of OpenAI ``chat.completion.chunk`` events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from turnout_common.errors import TurnoutError

from .base import UsageCounts
from .translation import openai_usage

Json = dict[str, Any]


class ChunkWriter:
    """Builds OpenAI ``chat.completion.chunk`` SSE events for one stream."""

    def __init__(self, rid: str, created: int, model: str) -> None:
        self.rid, self.created, self.model = rid, created, model
        self.chars = 0  # generated text written (content, tool names and arguments)

    def event(self, choices: list[Json], usage: Json | None = None) -> bytes:
        chunk: Json = {
            "id": self.rid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def delta(self, delta: Json, finish_reason: str | None = None) -> bytes:
        return self.event(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        )

    def role(self) -> bytes:
        return self.delta({"role": "assistant", "content": ""})

    def content(self, text: str) -> bytes:
        self.chars += len(text)
        return self.delta({"content": text})

    def tool_start(self, index: int, call_id: str, name: str, arguments: str = "") -> bytes:
        self.chars += len(name) + len(arguments)
        return self.delta(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ]
            }
        )

    def tool_args(self, index: int, arguments: str) -> bytes:
        self.chars += len(arguments)
        return self.delta({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def finish(self, reason: str) -> bytes:
        return self.delta({}, reason)

    def usage(self, usage: UsageCounts) -> bytes:
        return self.event([], openai_usage(usage))

    @staticmethod
    def error(err: TurnoutError) -> bytes:
        return b"data: " + orjson.dumps(err.to_dict()) + b"\n\n"

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


class Relay:
    """The state of a stream passed through event by event (the upstream already speaks the
    client's API; the model name is rewritten): the incomplete event waiting for more bytes,
    and what the stream reports (usage, finish reason, characters of generated text)."""

    __slots__ = ("_buf", "_model", "finish_reason", "output_chars", "usage")

    def __init__(self, public_model: str) -> None:
        self._model = public_model
        self._buf = b""
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.output_chars = 0


@dataclass(slots=True)
class SSEEvent:
    event: str
    data: str


class SSEDecoder:
    """Incremental ``text/event-stream`` parser: feed any byte slices, get whole events."""

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[SSEEvent]:
        lines = (self._buf + data).split(b"\n")
        self._buf = lines.pop()  # an incomplete last line waits for more bytes
        out: list[SSEEvent] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r").decode("utf-8", "replace"), out)
        return out

    def close(self) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf.rstrip(b"\r").decode("utf-8", "replace"), out)
            self._buf = b""
        self._line("", out)
        return out

    def _line(self, line: str, out: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
