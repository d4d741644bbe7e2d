"""What the adapters that translate (Anthropic, Gemini, Cohere) share: a clock and an id
factory (fixed in the golden tests), answers in OpenAI's shape, and the upstream facts their
stream translators read (:class:`~.stream_base.TranslatingStream` holds its adapter).

A subclass is still a pure transform behind the :class:`~.base.Adapter` Protocol; it says how
its upstream's requests, answers, usage and errors read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from turnout_common.errors import TurnoutError

from . import translation as t
from .base import UsageCounts, output_chars

Json = dict[str, Any]


class TranslatingAdapter(ABC):
    finish_map: ClassVar[Mapping[str, str]] = {}
    """The upstream's finish / stop reasons → OpenAI's (anything else: ``stop``)."""

    def __init__(self, clock: t.Clock = t.wall_clock, new_id: t.IdFactory = t.random_id) -> None:
        self.clock, self.new_id = clock, new_id

    @staticmethod
    @abstractmethod
    def usage_of(raw: Any) -> UsageCounts:
        """The upstream's usage object (in an answer or a stream event) → counts."""

    @abstractmethod
    def stream_error(self, err: Any) -> TurnoutError:
        """An error event inside a stream (no HTTP status of its own) → our error."""

    def finish_reason(self, raw: Any) -> str:
        return self.finish_map.get(str(raw), "stop")

    def completion(
        self, rid: Any, model: str, text: str, calls: list[Json], finish: str, usage: UsageCounts
    ) -> bytes:
        """A chat completion in OpenAI's shape (the upstream's id, else a new one)."""
        return t.chat_completion(
            rid=str(rid or self.new_id("chatcmpl-")),
            created=self.clock(),
            model=model,
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=usage,
        )

    def output_chars(self, body: bytes) -> int:
        return output_chars(body)  # parse() answers in OpenAI's shape
