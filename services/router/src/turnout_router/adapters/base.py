"""The small interface every upstream wire protocol implements.

Adapters are pure: they turn an OpenAI-shaped request into the upstream's HTTP request, and
the upstream's response / stream bytes back into OpenAI-shaped bytes plus exact usage. They
never do I/O, so they are golden-tested with recorded fixtures. Upstream errors are mapped
to :mod:`turnout_common.errors` here, inside the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from turnout_common.errors import TurnoutError

Purpose = Literal["chat", "completion", "embeddings", "reranking"]


@dataclass(slots=True, frozen=True)
class UpstreamTarget:
    """Where one attempt goes: a deployment resolved to its provider."""

    kind: str
    base_url: str
    upstream_model: str
    api_key: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class PreparedRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class UsageCounts:
    """Token counts reported by the upstream (``present`` False when it reported none)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    present: bool = False


class StreamTranslator(Protocol):
    """Feeds raw upstream stream bytes; yields complete OpenAI SSE events (``data: …\\n\\n``)."""

    usage: UsageCounts
    finish_reason: str | None

    @property
    def output_chars(self) -> int:
        """Characters of generated text passed so far (content, tool names and arguments):
        the estimate's basis when the upstream reports no usage."""
        ...

    def feed(self, data: bytes) -> list[bytes]: ...

    def close(self) -> list[bytes]:
        """Flush at end of stream; the last event is ``data: [DONE]\\n\\n``."""
        ...


class Adapter(Protocol):
    """One wire protocol (OpenAI-compatible, Anthropic Messages, Gemini, Cohere v2)."""

    def supports(self, purpose: Purpose) -> bool: ...

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        """The upstream HTTP request for an OpenAI-shaped ``body`` (model already resolved;
        for streams, ask the upstream for usage, e.g. ``stream_options.include_usage``)."""
        ...

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        """A 2xx upstream body → (OpenAI-shaped JSON bytes, usage)."""
        ...

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        """A translator for one streamed response; the usage chunk is passed to the client
        only if ``include_usage`` (the client asked for it)."""
        ...

    def output_chars(self, body: bytes) -> int:
        """Characters of generated text in a body :meth:`parse` returned (the estimate's basis
        when the upstream reports no usage)."""
        ...

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        """A non-2xx upstream response → our error (auth, rate limit + Retry-After, context
        length, content filter, 5xx …)."""
        ...


def content_chars(choices: Any) -> int:
    """Characters of generated text in OpenAI-shaped ``choices`` (messages or deltas)."""
    n = 0
    if isinstance(choices, list):
        for ch in choices:
            delta = ch.get("delta") or ch.get("message") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                n += len(content)
            text = ch.get("text")
            if isinstance(text, str):
                n += len(text)
            for tc in (delta.get("tool_calls") or ()) if isinstance(delta, dict) else ():
                fn = tc.get("function") or {}
                n += len(fn.get("arguments") or "") + len(fn.get("name") or "")
    return n


def output_chars(body: bytes) -> int:
    """Characters of generated text in an OpenAI-shaped response (for usage estimates)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0
    return content_chars(data.get("choices")) if isinstance(data, dict) else 0
