"""``POST /v1/messages``: Anthropic Messages in, any provider kind out; natively to
``anthropic`` providers (the client's body, model resolved; the answer passed through)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_router.adapters import translation as t
from turnout_router.adapters.anthropic import ADAPTER as ANTHROPIC
from turnout_router.adapters.anthropic import API_VERSION, DEFAULT_BASE_URL, usage_of
from turnout_router.adapters.base import (
    Adapter,
    StreamTranslator,
    UpstreamTarget,
    UsageCounts,
    content_chars,
)

from .chunks import ChunkSource
from .door import Door, Ingress, NativeAdapter, Skips, ViaChat, new_id, stream_flag
from .messages import error_body, from_chat, to_chat
from .messages_stream import MessagesEncoder, NativeMessagesStream, error_event

Json = dict[str, Any]
NATIVE_KINDS = frozenset({"anthropic"})


def new_message_id() -> str:
    return new_id("msg_")


class NativeMessages(NativeAdapter):
    """The client's Anthropic body to an Anthropic upstream, the answer back as it came."""

    upstream = ANTHROPIC
    source = "anthropic"
    usage_of = staticmethod(usage_of)

    def __init__(self, body: Json, version: str | None, beta: str | None = None) -> None:
        super().__init__(body)
        self._version = version or API_VERSION
        self._beta = beta

    def _address(self, target: UpstreamTarget, *, stream: bool) -> tuple[dict[str, str], str]:
        headers = {"content-type": "application/json", "anthropic-version": self._version}
        if self._beta:  # the client's opt-ins (Claude Code sends several)
            headers["anthropic-beta"] = self._beta
        headers.update(target.extra_headers)
        if target.api_key:
            headers["x-api-key"] = target.api_key
        if stream:
            headers["accept"] = "text/event-stream"
        return headers, t.base_url(target.base_url or DEFAULT_BASE_URL, "/v1") + "/v1/messages"

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        return NativeMessagesStream(public_model)


class MessagesDoor(Door):
    native = NATIVE_KINDS

    def __init__(self, body: Json, version: str | None, beta: str | None = None) -> None:
        stream_flag(body)
        skips = Skips()
        super().__init__(body, to_chat(body, skips), skips)
        self._version, self._beta = version, beta

    def adapter(self, kind: str, inner: Adapter) -> Adapter:
        if kind in NATIVE_KINDS:
            return NativeMessages(self.body, self._version, self._beta)
        return ViaChat(inner, self._encode, self._events)

    def _encode(self, chat: Json, usage: UsageCounts, model: str) -> Json:
        self.output_chars = content_chars(chat.get("choices"))
        shown = self.shown_usage(usage, self.output_chars)
        return from_chat(chat, shown, model, new_message_id())

    def _events(self, source: ChunkSource, model: str) -> StreamTranslator:
        return MessagesEncoder(source, new_message_id(), model, self.shown_usage)

    def stream_error(self, err: TurnoutError) -> bytes:
        return error_event(err)


class MessagesIngress(Ingress):
    """Auth by ``x-api-key`` or ``Authorization: Bearer`` (a Turnout virtual key either way);
    errors in Anthropic's shape; ``anthropic-version`` and ``anthropic-beta`` forwarded to
    native upstreams."""

    api = "messages"

    def authorization(self, headers: Mapping[str, str]) -> str | None:
        key = headers.get("x-api-key")
        return f"Bearer {key}" if key else headers.get("authorization")

    def error(self, err: TurnoutError) -> bytes:
        return orjson.dumps(error_body(err))

    def door(self, body: Json, headers: Mapping[str, str]) -> Door:
        return MessagesDoor(body, headers.get("anthropic-version"), headers.get("anthropic-beta"))


MESSAGES = MessagesIngress()
