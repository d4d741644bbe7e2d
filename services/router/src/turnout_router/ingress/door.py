"""The glue between a door and the request path.

An :class:`Ingress` (one per API, stateless) authenticates and renders errors in its API's
shape; :meth:`Ingress.open` validates a body and returns a :class:`Door` (one per request)
holding the client's body and the chat-completions request it became. The gateway asks the
door for the adapter of each attempt (:meth:`Door.adapter`): the provider's own adapter
wrapped so its chat answer is re-encoded (:class:`ViaChat`), or a native one
(:class:`NativeAdapter`: the client's body to an upstream that speaks the client's API itself,
model resolved; the answer passed back as it came but for the model name).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from turnout_common.errors import BadRequest, TurnoutError
from turnout_router.adapters import translation as t
from turnout_router.adapters.base import (
    Adapter,
    PreparedRequest,
    Purpose,
    StreamTranslator,
    UpstreamTarget,
    UsageCounts,
)
from turnout_router.adapters.openai import ADAPTER as OPENAI
from turnout_router.adapters.openai import _usage as openai_usage
from turnout_router.inputs import Inbound, inbound, load

from .chunks import ChunkSource, OpenAIChunks, TranslatedChunks

if TYPE_CHECKING:
    from turnout_router.routing import Candidate

Json = dict[str, Any]
_RNG = random.Random()


def new_id(prefix: str) -> str:
    """An id for a message / response / output item (unique, not secret: no syscall)."""
    return f"{prefix}{_RNG.getrandbits(96):024x}"


class Untranslatable(BadRequest):
    """A part of the request only a provider speaking the client's API takes as it is."""

    default_code = "untranslatable"


class Skips:
    """What the chat form of a request left out (server tools, document blocks …): such a
    request may go only to providers that take the client's body as it is."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def __call__(self, note: str) -> None:
        self.notes.append(note)


class Door(ABC):
    """One request through a door: the client's body and its chat-completions form."""

    native: frozenset[str] = frozenset()
    """Provider kinds that take the client's body as it is."""
    output_chars = 0
    """Characters of a translated answer (the usage estimate when the upstream gave none)."""

    def __init__(self, body: Json, chat: Json, skips: Skips | None = None) -> None:
        self.body = body
        self.skipped = skips.notes if skips is not None else []
        if self.skipped and not chat.get("messages"):  # all of it native-only: still routable
            chat["messages"] = [{"role": "user", "content": ""}]
        self.inbound: Inbound = inbound("chat", chat)

    def shown_usage(self, usage: UsageCounts, output_chars: int) -> UsageCounts:
        """The usage the client is shown: the upstream's counts, or when it reported none the
        router's estimate, exactly what the usage record holds then (marked estimated there:
        ``RequestContext.tokens``)."""
        if usage.present:
            return usage
        out = (output_chars + 3) // 4 if output_chars else 0
        return UsageCounts(self.inbound.prompt_tokens, out, 0, False)

    def narrow(self, chain: list[Candidate]) -> list[Candidate]:
        """The attempt chain this request can take: only native providers when its chat
        form left something out (400 naming what, when the model has none)."""
        if not self.skipped:
            return chain
        keep = [c for c in chain if c.provider.kind in self.native]
        if not keep:
            kinds = ", ".join(sorted(self.native)) or "no"
            raise Untranslatable(
                f"{self.skipped[0]}: only {kinds} providers take it as it is, and none of this "
                "model's is one"
            )
        return keep

    @abstractmethod
    def adapter(self, kind: str, inner: Adapter) -> Adapter:
        """The adapter of an attempt on a provider of ``kind`` (``inner``: its own)."""

    @abstractmethod
    def stream_error(self, err: TurnoutError) -> bytes:
        """An SSE event telling the client the stream broke."""


class Ingress(ABC):
    """One client API: its name in usage records, its auth header and error shape."""

    api: str

    def authorization(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    def error(self, err: TurnoutError) -> bytes:
        return orjson.dumps(err.to_dict())

    def open(self, raw: bytes, headers: Mapping[str, str]) -> Door:
        """The request's door, or 400/422 (the body is parsed and validated here)."""
        return self.door(load(raw), headers)

    @abstractmethod
    def door(self, body: Json, headers: Mapping[str, str]) -> Door: ...


def stream_flag(body: Json) -> None:
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("stream: true or false is required", param="stream")


Encode = Callable[[Json, UsageCounts, str], Json]
"""(chat completion, usage, public model) → the client API's response body."""
Events = Callable[[ChunkSource, str], StreamTranslator]
"""(chat chunks, public model) → the client API's stream translator."""


class ViaChat:
    """A provider's adapter, its answers re-encoded for the client's API."""

    def __init__(self, inner: Adapter, encode: Encode, events: Events) -> None:
        self.inner, self._encode, self._events = inner, encode, events

    def supports(self, purpose: Purpose) -> bool:
        return self.inner.supports(purpose)

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        return self.inner.prepare(purpose, body, target, stream=stream)

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        if self.inner is OPENAI:  # already chat-shaped: read it once (the encoder sets model)
            chat = t.load_json(body, "the upstream")
            usage = openai_usage(chat.get("usage"))
        else:
            out, usage = self.inner.parse(purpose, body, public_model)
            chat = orjson.loads(out)
        return orjson.dumps(self._encode(chat, usage, public_model)), usage

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        if self.inner is OPENAI:  # chat-shaped already: parsed once, never re-encoded
            return self._events(OpenAIChunks(), public_model)
        # the door needs the usage chunk for its own final event, whatever the client said
        inner = self.inner.stream(public_model, include_usage=True)
        return self._events(TranslatedChunks(inner), public_model)

    def output_chars(self, body: bytes) -> int:
        return output_chars(body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        return self.inner.error(status, headers, body)


class NativeAdapter(ABC):
    """The :class:`~turnout_router.adapters.base.Adapter` of a native attempt."""

    upstream: ClassVar[Adapter]
    """The provider kind's own adapter: it maps the upstream's errors."""
    source: ClassVar[str]
    """Who sent a body that is not JSON, in the error that says so."""
    pinned: ClassVar[Json] = {}
    """Fields set in every upstream body whatever the client sent."""

    def __init__(self, body: Json) -> None:
        self._body = body

    def supports(self, purpose: Purpose) -> bool:
        return purpose == "chat"

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        payload = {**self._body, "model": target.upstream_model, **self.pinned}
        headers, url = self._address(target, stream=stream)
        return PreparedRequest("POST", url, headers, orjson.dumps(payload))

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        data = t.load_json(body, self.source)
        data["model"] = public_model
        return orjson.dumps(data), self.usage_of(data.get("usage"))

    def output_chars(self, body: bytes) -> int:
        return output_chars(body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        return self.upstream.error(status, headers, body)

    @abstractmethod
    def _address(self, target: UpstreamTarget, *, stream: bool) -> tuple[dict[str, str], str]:
        """The upstream request's headers and URL."""

    @staticmethod
    @abstractmethod
    def usage_of(raw: Any) -> UsageCounts:
        """The answer's ``usage`` → counts."""

    @abstractmethod
    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator: ...


def output_chars(body: bytes) -> int:
    """Characters of generated text in a Messages or Responses answer (the usage estimate's
    basis when the upstream reports no usage): text blocks and tool arguments."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0
    if not isinstance(data, dict):
        return 0
    n = 0
    for block in data.get("content") or data.get("output") or ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):  # a Messages text block
            n += len(block["text"])
        if block.get("type") == "tool_use":
            n += len(block.get("name") or "") + len(orjson.dumps(block.get("input") or {}))
        if isinstance(block.get("arguments"), str):  # a Responses function call
            n += len(block["arguments"]) + len(block.get("name") or "")
        for part in block.get("content") or () if block.get("type") == "message" else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                n += len(part["text"])
    return n
