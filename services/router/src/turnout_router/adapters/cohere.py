"""Cohere v2 API (``/v2/chat``, ``/v2/embed``, ``/v2/rerank``, bearer auth) ↔ OpenAI.

Usage: Cohere bills ``billed_units`` (input/output tokens), so that is what we report, and
``tokens`` only when ``billed_units`` is absent. Rerank is billed by Cohere in *search
units*; our catalog prices tokens, so rerank usage is ``meta.tokens.input_tokens`` (or
billed input tokens) when reported, else ``present`` False and the router estimates the
tokens of query + documents. The search units are passed on in the response's ``usage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_common.provider_kinds import KINDS

from . import translation as t
from .base import PreparedRequest, Purpose, StreamTranslator, UpstreamTarget, UsageCounts
from .cohere_request import chat_request, embed_request, rerank_request
from .cohere_stream import CohereStream
from .translating import TranslatingAdapter
from .upstream_errors import map_status, retry_after

DEFAULT_BASE_URL = KINDS["cohere"].default_base_url or ""
FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "stop",
    "TIMEOUT": "stop",
}
PATHS = {"chat": "/v2/chat", "embeddings": "/v2/embed", "reranking": "/v2/rerank"}
_CONTEXT_MARKERS = ("too many tokens", "context length", "context window", "exceeds the maximum")

Json = dict[str, Any]


def usage_of(raw: Any) -> UsageCounts:
    """``usage`` of chat (or ``meta`` of embed / rerank) → counts."""
    if not isinstance(raw, dict):
        return UsageCounts()
    for key in ("billed_units", "tokens"):
        units = raw.get(key)
        if isinstance(units, dict) and ("input_tokens" in units or "output_tokens" in units):
            return UsageCounts(
                input_tokens=int(units.get("input_tokens") or 0),
                output_tokens=int(units.get("output_tokens") or 0),
                present=True,
            )
    return UsageCounts()


def error_from(status: int, headers: Mapping[str, str], message: str) -> TurnoutError:
    if status == 498:  # Cohere's "invalid token"
        status = 401
    context = status in (400, 422) and any(m in message.lower() for m in _CONTEXT_MARKERS)
    return map_status("cohere", status, message, retry=retry_after(headers), context_length=context)


class CohereAdapter(TranslatingAdapter):
    finish_map = FINISH
    usage_of = staticmethod(usage_of)

    def supports(self, purpose: Purpose) -> bool:
        return purpose in PATHS

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        model = target.upstream_model
        if purpose == "chat":
            payload = chat_request(body, model, stream=stream)
        elif purpose == "embeddings":
            payload = embed_request(body, model)
        elif purpose == "reranking":
            payload = rerank_request(body, model)
        else:
            raise t.unsupported("Cohere", purpose)
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            **target.extra_headers,
        }
        if stream:
            headers["accept"] = "text/event-stream"
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        url = t.base_url(target.base_url or DEFAULT_BASE_URL, "/v2", "/v1") + PATHS[purpose]
        return PreparedRequest("POST", url, headers, orjson.dumps(payload))

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        data = t.load_json(body, "cohere")
        if purpose == "embeddings":
            usage = usage_of(data.get("meta"))
            vectors = (data.get("embeddings") or {}).get("float") or []
            return t.embedding_list(vectors, public_model, usage), usage
        if purpose == "reranking":
            return self._rerank(data, public_model)
        message = data.get("message") or {}
        text = "".join(
            str(c.get("text", "")) for c in message.get("content") or [] if c.get("type") == "text"
        )
        calls = [
            t.tool_call(
                str(c.get("id")),
                str((c.get("function") or {}).get("name")),
                (c.get("function") or {}).get("arguments") or "{}",
            )
            for c in message.get("tool_calls") or []
        ]
        usage = usage_of(data.get("usage"))
        finish = self.finish_reason(data.get("finish_reason"))
        return self.completion(data.get("id"), public_model, text, calls, finish, usage), usage

    def _rerank(self, data: Json, public_model: str) -> tuple[bytes, UsageCounts]:
        meta = data.get("meta") or {}
        usage = usage_of({"tokens": meta.get("tokens"), "billed_units": meta.get("billed_units")})
        billed: Json = meta.get("billed_units") or {}
        body_usage: Json = {}
        if usage.present:
            body_usage["total_tokens"] = usage.input_tokens
        if billed.get("search_units") is not None:
            body_usage["search_units"] = billed["search_units"]
        results = [
            {
                "index": r.get("index"),
                "relevance_score": r.get("relevance_score"),
                **({"document": r["document"]} if r.get("document") else {}),
            }
            for r in data.get("results") or []
        ]
        out = {
            "id": str(data.get("id") or self.new_id("rerank-")),
            "results": results,
            "model": public_model,
            "usage": body_usage,
        }
        return orjson.dumps(out), usage

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        return CohereStream(self, public_model, include_usage=include_usage)

    def stream_error(self, err: Any) -> TurnoutError:
        return error_from(500, {}, str(err))  # message-end's error: a message

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        try:
            data = orjson.loads(body)
            message = str(data.get("message", "")) if isinstance(data, dict) else ""
        except orjson.JSONDecodeError:
            message = body.decode("utf-8", "replace")
        return error_from(status, headers, message)


ADAPTER = CohereAdapter()
