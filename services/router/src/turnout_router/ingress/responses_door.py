"""``POST /v1/responses``: OpenAI Responses in; natively to ``openai`` providers (which
speak it: :mod:`.responses_native`), translated to chat completions for every other kind."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from turnout_common.errors import TurnoutError
from turnout_router.adapters.base import Adapter, StreamTranslator, UsageCounts, content_chars

from .chunks import ChunkSource
from .door import Door, Ingress, Skips, ViaChat, new_id, stream_flag
from .responses import from_chat, to_chat
from .responses_native import NATIVE_KINDS, NativeResponses
from .responses_stream import ResponsesEncoder, error_event

Json = dict[str, Any]


class ResponsesDoor(Door):
    native = NATIVE_KINDS

    def __init__(self, body: Json) -> None:
        stream_flag(body)
        skips = Skips()
        super().__init__(body, to_chat(body, skips), skips)

    def _encode(self, chat: Json, usage: UsageCounts, model: str) -> Json:
        self.output_chars = content_chars(chat.get("choices"))
        shown = self.shown_usage(usage, self.output_chars)
        return from_chat(chat, shown, model, self.body, new_id, int(time.time()))

    def _events(self, source: ChunkSource, model: str) -> StreamTranslator:
        enc = ResponsesEncoder(source, self.body, model, new_id, int(time.time()))
        enc.shown = self.shown_usage
        return enc

    def adapter(self, kind: str, inner: Adapter) -> Adapter:
        if kind in NATIVE_KINDS:
            return NativeResponses(self.body)
        return ViaChat(inner, self._encode, self._events)

    def stream_error(self, err: TurnoutError) -> bytes:
        return error_event(err)


class ResponsesIngress(Ingress):
    """Bearer auth and errors in OpenAI's shape, like chat completions."""

    api = "responses"

    def door(self, body: Json, headers: Mapping[str, str]) -> Door:
        return ResponsesDoor(body)


RESPONSES = ResponsesIngress()
