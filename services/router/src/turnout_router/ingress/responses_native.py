"""``/v1/responses`` to a provider that speaks the Responses API itself (kind ``openai``): the
client's body as it came (model resolved, ``store`` false: Turnout keeps no responses, and
neither may the upstream on its behalf), the answer and the stream passed through but for the
model name. Usage is read from the response (``response.completed`` in a stream)."""

from __future__ import annotations

from typing import Any, ClassVar

from turnout_router.adapters.base import StreamTranslator, UpstreamTarget, UsageCounts
from turnout_router.adapters.openai import ADAPTER as OPENAI

from .door import NativeAdapter
from .streams import NativeStream

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


class NativeResponses(NativeAdapter):
    upstream = OPENAI
    source = "the upstream"
    pinned: ClassVar[Json] = {"store": False}
    usage_of = staticmethod(usage_of)

    def _address(self, target: UpstreamTarget, *, stream: bool) -> tuple[dict[str, str], str]:
        headers = OPENAI.headers(target)
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers, OPENAI.base_url(target) + "/responses"

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        return NativeResponsesStream(public_model)


class NativeResponsesStream(NativeStream):
    """The upstream's events as they came; ``response.model`` rewritten in the lifecycle
    events (which carry the final usage)."""

    def _read(self, data: Json) -> bool:
        kind = data.get("type")
        if kind == "response.output_text.delta":
            self.output_chars += len(str(data.get("delta") or ""))
        elif kind in _LIFECYCLE and isinstance(data.get("response"), dict):
            resp = data["response"]
            if resp.get("usage"):
                self.usage = usage_of(resp["usage"])
            if kind != "response.created" and kind != "response.in_progress":
                self.finish_reason = str(resp.get("status") or kind)
            resp["model"] = self._model
            return True
        return False
