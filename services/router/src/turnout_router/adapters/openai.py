"""OpenAI-compatible wire protocol: vLLM, Ollama ``/v1``, llama.cpp, OpenAI, OpenRouter, Groq,
Together, Mistral, Fireworks and any ``openai_compatible`` server.

Providers are data rows (:data:`PROVIDERS`), not classes: default base URL, auth header
style and whether the server accepts ``stream_options.include_usage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from turnout_common.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentFiltered,
    ContextLengthExceeded,
    NotFound,
    RateLimited,
    TurnoutError,
    UpstreamAuthFailed,
    UpstreamError,
)
from turnout_common.provider_kinds import KINDS, ProviderKind
from turnout_router.adapters.base import (
    PreparedRequest,
    Purpose,
    UpstreamTarget,
    UsageCounts,
    content_chars,
    output_chars,
)
from turnout_router.adapters.stream_events import Relay

PROVIDERS: dict[str, ProviderKind] = {
    name: row for name, row in KINDS.items() if row.protocol == "openai"
}
"""The kinds this adapter serves: rows of :mod:`turnout_common.provider_kinds` (default base
URL, auth header, ``openai_prefix`` below a server-root base URL, stream usage option)."""
_GENERIC = PROVIDERS["openai_compatible"]

_PATHS: dict[str, str] = {
    "chat": "/chat/completions",
    "completion": "/completions",
    "embeddings": "/embeddings",
    "reranking": "/rerank",
}
_JSON = "application/json"


def _usage(obj: Any) -> UsageCounts:
    if not isinstance(obj, dict):
        return UsageCounts()
    inp = obj.get("prompt_tokens")
    if inp is None:
        inp = obj.get("input_tokens", obj.get("total_tokens"))
    out = obj.get("completion_tokens", obj.get("output_tokens")) or 0
    details = obj.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return UsageCounts(int(inp or 0), int(out), int(cached or 0), present=inp is not None)


class OpenAIStream(Relay):
    """SSE passthrough: splits events, rewrites ``model``, reads usage, drops the usage chunk
    unless the client asked for it. Never buffers more than one incomplete event."""

    __slots__ = ("_include_usage",)

    def __init__(self, public_model: str, include_usage: bool) -> None:
        super().__init__(public_model)
        self._include_usage = include_usage

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        if b"\n\n" not in buf and b"\r\n\r\n" not in buf:
            self._buf = buf
            return []
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        *events, self._buf = buf.split(b"\n\n")
        out: list[bytes] = []
        for ev in events:
            item = self._event(ev)
            if item is not None:
                out.append(item)
        return out

    def _event(self, ev: bytes) -> bytes | None:
        if not ev.startswith(b"data:"):
            return ev + b"\n\n" if ev.strip() else None
        payload = ev[5:].strip()
        if payload == b"[DONE]":
            return None  # emitted by close(), exactly once
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return ev + b"\n\n"
        if not isinstance(chunk, dict):
            return ev + b"\n\n"
        choices = chunk.get("choices")
        self.output_chars += content_chars(choices)
        if choices:
            fr = choices[0].get("finish_reason")
            if fr:
                self.finish_reason = fr
        usage = chunk.get("usage")
        if usage:
            self.usage = _usage(usage)
            if not choices and not self._include_usage:
                return None
            if not self._include_usage:
                chunk.pop("usage", None)
        elif "usage" in chunk and not self._include_usage:
            chunk.pop("usage", None)
        if "model" in chunk:
            chunk["model"] = self._model
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def close(self) -> list[bytes]:
        out: list[bytes] = []
        if self._buf.strip():
            item = self._event(self._buf.strip())
            if item is not None:
                out.append(item)
        self._buf = b""
        out.append(b"data: [DONE]\n\n")
        return out


def _message(body: bytes) -> tuple[str, str | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode(errors="replace"), None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = err.get("code") or err.get("type")
        return str(err.get("message") or err), str(code) if code else None
    if isinstance(err, str):
        return err, None
    return str(data)[:300], None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


class OpenAIAdapter:
    """The :class:`~turnout_router.adapters.base.Adapter` for OpenAI-compatible servers."""

    def supports(self, purpose: Purpose) -> bool:
        return purpose in _PATHS

    def base_url(self, target: UpstreamTarget) -> str:
        row = PROVIDERS.get(target.kind, _GENERIC)
        base = (target.base_url or row.default_base_url or "").rstrip("/")
        if row.openai_prefix and not base.endswith(row.openai_prefix):
            base += row.openai_prefix  # http://host:11434 -> http://host:11434/v1
        return base

    def headers(self, target: UpstreamTarget) -> dict[str, str]:
        row = PROVIDERS.get(target.kind, _GENERIC)
        h = {"Content-Type": _JSON, "Accept": _JSON}
        if target.api_key:
            h[row.auth_header] = row.auth_prefix + target.api_key
        h.update(target.extra_headers)
        return h

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        out = dict(body)
        out["model"] = target.upstream_model
        if stream:
            if PROVIDERS.get(target.kind, _GENERIC).stream_usage_option:
                opts = out.get("stream_options")
                opts = dict(opts) if isinstance(opts, dict) else {}
                opts["include_usage"] = True
                out["stream_options"] = opts
            else:
                out.pop("stream_options", None)
        headers = self.headers(target)
        if stream:
            headers["Accept"] = "text/event-stream"
        return PreparedRequest(
            "POST", self.base_url(target) + _PATHS[purpose], headers, orjson.dumps(out)
        )

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("the upstream returned a body that is not JSON") from exc
        if not isinstance(data, dict):
            raise UpstreamError("the upstream returned an unexpected JSON body")
        usage = _usage(data.get("usage"))
        if "model" in data:
            data["model"] = public_model
        return orjson.dumps(data), usage

    def stream(self, public_model: str, *, include_usage: bool) -> OpenAIStream:
        return OpenAIStream(public_model, include_usage)

    def output_chars(self, body: bytes) -> int:
        return output_chars(body)  # parse() answers in OpenAI's shape

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        message, code = _message(body)
        text = f"upstream {status}: {message}"
        low = (message + " " + (code or "")).lower()
        if status == 429:
            return RateLimited(text, retry_after=_retry_after(headers))
        if status in (401, 403):
            return UpstreamAuthFailed(text)
        if status >= 500:
            return UpstreamError(text)
        if "context_length" in low or "context length" in low or "maximum context" in low:
            return ContextLengthExceeded(text)
        if "content_filter" in low or "content management policy" in low:
            return ContentFiltered(text)
        if status == 404:
            return NotFound(text, code="upstream_model_not_found")
        if status in (400, 409, 413, 422):
            return BadRequest(text, code=code or "invalid_request")
        return AuthenticationFailed(text) if status == 407 else UpstreamError(text)


ADAPTER = OpenAIAdapter()
