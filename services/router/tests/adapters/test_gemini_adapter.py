"""Golden tests: OpenAI ↔ Gemini generateContent / streamGenerateContent / batchEmbedContents."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from turnout_common.errors import (
    BadRequest,
    ContextLengthExceeded,
    RateLimited,
    UpstreamAuthFailed,
    UpstreamError,
)
from turnout_router.adapters.base import UpstreamTarget
from turnout_router.adapters.gemini import ADAPTER, GeminiAdapter
from turnout_router.adapters.translation import encode_vector

from .conftest import Golden, assert_upstream_error

TARGET = UpstreamTarget(
    "google",
    "https://generativelanguage.googleapis.com",
    "models/gemini-2.0-flash",
    api_key="AIzaSyTESTKEY",
)
STREAM, STREAM_EXPECTED = Golden.stream_case("gemini/stream_text")


def test_supports_chat_and_embeddings() -> None:
    assert ADAPTER.supports("chat")
    assert ADAPTER.supports("embeddings")
    assert not ADAPTER.supports("reranking")
    assert not ADAPTER.supports("completion")


@pytest.mark.parametrize(
    ("stream", "suffix"), [(False, ":generateContent"), (True, ":streamGenerateContent?alt=sse")]
)
def test_request_golden(golden: Golden, stream: bool, suffix: str) -> None:
    req = ADAPTER.prepare(
        "chat", golden.json("gemini/chat_request.openai.json"), TARGET, stream=stream
    )
    assert req.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash" + suffix
    )
    assert req.headers["x-goog-api-key"] == "AIzaSyTESTKEY"
    assert orjson.loads(req.body) == golden.json("gemini/chat_request.expected.json")


def test_base_url_with_version_suffix_is_not_doubled() -> None:
    target = UpstreamTarget("google", "http://127.0.0.1:9/v1beta/", "gemini-x")
    req = ADAPTER.prepare(
        "chat", {"messages": [{"role": "user", "content": "hi"}]}, target, stream=False
    )
    assert req.url == "http://127.0.0.1:9/v1beta/models/gemini-x:generateContent"
    assert "x-goog-api-key" not in req.headers
    assert orjson.loads(req.body) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_json_schema_mode_and_tool_choice_modes() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
    }
    sent = orjson.loads(ADAPTER.prepare("chat", body, TARGET, stream=False).body)
    assert sent["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    }
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent["tools"] == [{"functionDeclarations": [{"name": "f"}]}]


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"role": "tool", "tool_call_id": "nope", "content": "x"}], "tool_call_id"),
        ([{"role": "system", "content": "x"}], "at least one user"),
        ([{"role": "user", "content": [{"type": "file"}]}], "'file'"),
    ],
)
def test_invalid_messages_are_refused(messages: list[dict[str, object]], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        ADAPTER.prepare("chat", {"messages": messages}, TARGET, stream=False)


def test_blocked_prompt_is_a_content_filter_finish(golden: Golden) -> None:
    body = (
        b'{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}}'
    )
    out, usage = golden.adapter(GeminiAdapter).parse("chat", body, "g")
    choice = orjson.loads(out)["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert (usage.input_tokens, usage.output_tokens) == (8, 0)


def test_stream_golden_usage_from_last_event(golden: Golden) -> None:
    translator = golden.adapter(GeminiAdapter).stream("gemini-flash", include_usage=True)
    assert golden.translate(translator, [STREAM]) == STREAM_EXPECTED
    assert translator.finish_reason == "length"
    assert (
        translator.usage.input_tokens,
        translator.usage.output_tokens,
        translator.usage.cached_tokens,
    ) == (9, 8, 4)


def test_stream_tool_call(golden: Golden) -> None:
    stream, expected = golden.stream_case("gemini/stream_tool")
    translator = golden.adapter(GeminiAdapter).stream("gemini-flash", include_usage=False)
    assert golden.translate(translator, [stream]) == expected
    assert translator.usage.output_tokens == 5


def test_embeddings_round_trip(golden: Golden) -> None:
    target = UpstreamTarget("google", "https://g.example", "text-embedding-004")
    req = ADAPTER.prepare(
        "embeddings", {"input": ["a b", "c"], "dimensions": 3}, target, stream=False
    )
    assert req.url == "https://g.example/v1beta/models/text-embedding-004:batchEmbedContents"
    assert orjson.loads(req.body) == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "a b"}]},
                "outputDimensionality": 3,
            },
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "c"}]},
                "outputDimensionality": 3,
            },
        ]
    }
    out, usage = ADAPTER.parse("embeddings", golden.raw("gemini/embed_response.json"), "emb")
    assert orjson.loads(out) == {
        "object": "list",
        "model": "emb",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": [0.013168523, -0.008711934, -0.046782676],
            },
            {"object": "embedding", "index": 1, "embedding": [0.5, 0.25, -1.0]},
        ],
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    assert not usage.present  # Gemini reports no token usage: the router estimates


def test_base64_vector_encoding_matches_openai() -> None:
    raw = base64.b64decode(encode_vector([0.5, 0.25, -1.0]))
    assert struct.unpack("<3f", raw) == (0.5, 0.25, -1.0)


def _err(code: int, status: str, message: str, details: list[object] | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": details or []}}
    )


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            400,
            _err(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum "
                "number of tokens allowed (1048576).",
            ),
            ContextLengthExceeded,
            "context_length_exceeded",
        ),
        (
            400,
            _err(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                    }
                ],
            ),
            UpstreamAuthFailed,
            "upstream_auth_failed",
        ),
        (
            403,
            _err(403, "PERMISSION_DENIED", "Permission denied"),
            UpstreamAuthFailed,
            "upstream_permission_denied",
        ),
        (
            400,
            _err(400, "INVALID_ARGUMENT", "Invalid JSON payload"),
            BadRequest,
            "upstream_invalid_request",
        ),
        (503, _err(503, "UNAVAILABLE", "The model is overloaded."), UpstreamError, "bad_gateway"),
        (500, b"not json", UpstreamError, "bad_gateway"),
    ],
)
def test_error_mapping(status: int, body: bytes, cls: type, code: str) -> None:
    assert_upstream_error(ADAPTER.error(status, {}, body), cls, code, "gemini")


def test_rate_limit_retry_after_from_header_or_retry_info() -> None:
    body = _err(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded",
        [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
    )
    from_body = ADAPTER.error(429, {}, body)
    assert isinstance(from_body, RateLimited)
    assert from_body.retry_after == 37.0
    from_header = ADAPTER.error(429, {"retry-after": "3"}, body)
    assert isinstance(from_header, RateLimited)
    assert from_header.retry_after == 3.0
    assert from_header.headers["retry-after"] == "3"
