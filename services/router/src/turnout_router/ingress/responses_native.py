"""``/v1/responses`` to a provider that speaks the Responses API itself (kind ``openai``): the
client's body as it came (model resolved, ``store`` false: Turnout keeps no responses, and
neither may the upstream on its behalf), the answer and the stream passed through but for the
model name. Usage is read from the response (``response.completed`` in a stream)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_router.adapters import translation as t
from turnout_router.adapters.base import (
    PreparedRequest,
    Purpose,
    StreamTranslator,
    UpstreamTarget,
    UsageCounts,
)
from turnout_router.adapters.openai import ADAPTER as OPENAI
from turnout_router.ingress.door import output_chars as door_output_chars

Json = dict[str, Any]
NATIVE_KINDS = frozenset({"openai"})
_LIFECYCLE = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.completed",
        "response.incomplete",
        "response.failed",
    }
)


def usage_of(raw: Any) -> UsageCounts:
    """Responses usage: ``input_tokens`` includes the cached ones (as our records count)."""
    if not isinstance(raw, dict) or "input_tokens" not in raw:
        return UsageCounts()
    details = raw.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return UsageCounts(
        int(raw.get("input_tokens") or 0),
        int(raw.get("output_tokens") or 0),
        int(cached or 0),
        present=True,
    )


class NativeResponses:
    def __init__(self, body: Json) -> None:
        self._body = body

    def supports(self, purpose: Purpose) -> bool:
        return purpose == "chat"

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        payload = dict(self._body)
        payload["model"] = target.upstream_model
        payload["store"] = False
        headers = OPENAI.headers(target)
        if stream:
            headers["Accept"] = "text/event-stream"
        url = OPENAI.base_url(target) + "/responses"
        return PreparedRequest("POST", url, headers, orjson.dumps(payload))

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        data = t.load_json(body, "the upstream")
        data["model"] = public_model
        return orjson.dumps(data), usage_of(data.get("usage"))

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        return NativeResponsesStream(public_model)

    def output_chars(self, body: bytes) -> int:
        return door_output_chars(body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        return OPENAI.error(status, headers, body)


class NativeResponsesStream:
    """The upstream's events as they came; ``response.model`` rewritten in the lifecycle
    events (which carry the final usage)."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._buf = b""
        self.usage = UsageCounts()
        self.finish_reason: str | None = None
        self.output_chars = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        *events, self._buf = buf.split(b"\n\n")
        return [out for ev in events if (out := self._event(ev)) is not None]

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
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "response.output_text.delta":
            self.output_chars += len(str(data.get("delta") or ""))
        elif kind in _LIFECYCLE and isinstance(data.get("response"), dict):
            resp = data["response"]
            if resp.get("usage"):
                self.usage = usage_of(resp["usage"])
            if kind != "response.created" and kind != "response.in_progress":
                self.finish_reason = str(resp.get("status") or kind)
            resp["model"] = self._model
            return ev[:at] + b"data: " + orjson.dumps(data) + b"\n\n"
        return ev + b"\n\n"
