"""Google Gemini API (``generateContent``, ``streamGenerateContent?alt=sse``,
``batchEmbedContents``) ↔ OpenAI chat completions and embeddings.

Usage: input = ``promptTokenCount`` (+ ``toolUsePromptTokenCount``), which already includes
``cachedContentTokenCount`` (our cached tokens); output = ``candidatesTokenCount`` +
``thoughtsTokenCount`` (thinking is billed as output). Embeddings report no usage
(``present`` False: the router estimates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_common.provider_kinds import KINDS

from . import translation as t
from .base import PreparedRequest, Purpose, StreamTranslator, UpstreamTarget, UsageCounts
from .gemini_request import chat_request, embed_request
from .gemini_stream import GeminiStream
from .translating import TranslatingAdapter
from .upstream_errors import map_status, retry_after

DEFAULT_BASE_URL = KINDS["google"].default_base_url or ""
FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_TOKEN_LIMIT = re.compile(r"token.*(exceed|limit|too (long|many))|(exceed|too many).*token", re.I)
_AUTH_MARKERS = ("api key not valid", "api_key_invalid", "api key expired")

Json = dict[str, Any]


def usage_of(raw: Any) -> UsageCounts:
    if not isinstance(raw, dict) or "promptTokenCount" not in raw:
        return UsageCounts()
    return UsageCounts(
        input_tokens=int(raw.get("promptTokenCount") or 0)
        + int(raw.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(raw.get("candidatesTokenCount") or 0)
        + int(raw.get("thoughtsTokenCount") or 0),
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
        present=True,
    )


def finish_of(candidate: Json, has_calls: bool) -> str | None:
    raw = candidate.get("finishReason")
    if raw is None:
        return None
    reason = FINISH.get(str(raw), "stop")
    return "tool_calls" if has_calls and reason == "stop" else reason


def _retry_delay(err: Json) -> float | None:
    for detail in err.get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                return None
    return None


def error_from(status: int, headers: Mapping[str, str], err: Json) -> TurnoutError:
    message = str(err.get("message") or err.get("status") or "")
    lower = (message + " " + orjson.dumps(err.get("details") or []).decode()).lower()
    if status == 400 and any(m in lower for m in _AUTH_MARKERS):
        status = 401  # Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID
    retry = retry_after(headers)
    if retry is None and status == 429:
        retry = _retry_delay(err)
    context = status == 400 and bool(_TOKEN_LIMIT.search(message))
    return map_status("gemini", status, message, retry=retry, context_length=context)


class GeminiAdapter(TranslatingAdapter):
    usage_of = staticmethod(usage_of)
    finish_of = staticmethod(finish_of)

    def supports(self, purpose: Purpose) -> bool:
        return purpose in ("chat", "embeddings")

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        model = target.upstream_model.removeprefix("models/")
        root = f"{t.base_url(target.base_url or DEFAULT_BASE_URL, '/v1beta')}/v1beta/models/{model}"
        if purpose == "chat":
            payload = chat_request(body)
            url = root + (":streamGenerateContent?alt=sse" if stream else ":generateContent")
        elif purpose == "embeddings":
            payload, url = embed_request(body, model), root + ":batchEmbedContents"
        else:
            raise t.unsupported("Gemini", purpose)
        headers = {"content-type": "application/json", **target.extra_headers}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        return PreparedRequest("POST", url, headers, orjson.dumps(payload))

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        data = t.load_json(body, "gemini")
        if purpose == "embeddings":
            vectors = [list(e.get("values") or []) for e in data.get("embeddings") or []]
            usage = UsageCounts()
            return t.embedding_list(vectors, public_model, usage), usage
        candidates = data.get("candidates") or [{}]
        text: list[str] = []
        calls: list[Json] = []
        for part in (candidates[0].get("content") or {}).get("parts") or []:
            if "text" in part and not part.get("thought"):
                text.append(str(part["text"]))
            elif isinstance(fc := part.get("functionCall"), dict):
                calls.append(
                    t.tool_call(
                        str(fc.get("id") or self.new_id("call_")),
                        str(fc.get("name")),
                        fc.get("args") or {},
                    )
                )
        finish = finish_of(candidates[0], bool(calls))
        if finish is None:  # no candidate: the prompt itself was blocked
            finish = "content_filter" if data.get("promptFeedback") else "stop"
        usage = usage_of(data.get("usageMetadata"))
        rid = data.get("responseId")
        return self.completion(rid, public_model, "".join(text), calls, finish, usage), usage

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        return GeminiStream(self, public_model, include_usage=include_usage)

    def stream_error(self, err: Json) -> TurnoutError:
        return error_from(int(err.get("code") or 500), {}, err)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, list) and data:  # some endpoints wrap the error in a list
            data = data[0]
        err = data.get("error") if isinstance(data, dict) else None
        if not isinstance(err, dict):
            err = {"message": body.decode("utf-8", "replace")}
        return error_from(status, headers, err)


ADAPTER = GeminiAdapter()
