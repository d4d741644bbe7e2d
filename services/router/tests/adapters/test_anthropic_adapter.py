"""Golden tests: OpenAI ↔ Anthropic Messages (request, response, stream, errors)."""

from __future__ import annotations

import orjson
import pytest

from turnout_common.errors import (
    BadRequest,
    ContextLengthExceeded,
    RateLimited,
    UpstreamAuthFailed,
    UpstreamError,
)
from turnout_router.adapters.anthropic import ADAPTER, AnthropicAdapter
from turnout_router.adapters.base import UpstreamTarget

from .conftest import Golden, assert_upstream_error, without_usage

TARGET = UpstreamTarget(
    "anthropic",
    "https://api.anthropic.com/v1/",
    "claude-3-5-sonnet-20241022",
    api_key="sk-ant-test-0123456789",
)
STREAM, STREAM_EXPECTED = Golden.stream_case("anthropic/stream_tool")


def test_supports_chat_only() -> None:
    assert ADAPTER.supports("chat")
    assert not any(ADAPTER.supports(p) for p in ("completion", "embeddings", "reranking"))
    with pytest.raises(BadRequest, match="does not serve 'embeddings'"):
        ADAPTER.prepare("embeddings", {"input": "x"}, TARGET, stream=False)


def test_request_system_tools_images_round_trip(golden: Golden) -> None:
    req = ADAPTER.prepare(
        "chat", golden.json("anthropic/chat_request.openai.json"), TARGET, stream=True
    )
    assert req.method == "POST"
    assert req.url == "https://api.anthropic.com/v1/messages"
    assert req.headers["x-api-key"] == "sk-ant-test-0123456789"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["content-type"] == "application/json"
    assert orjson.loads(req.body) == golden.json("anthropic/chat_request.expected.json")


@pytest.mark.parametrize(
    ("extra", "max_tokens"),
    [({}, 4096), ({"max_tokens": 100}, 100), ({"max_tokens": 100, "max_completion_tokens": 7}, 7)],
)
def test_max_tokens_default(extra: dict[str, int], max_tokens: int) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    sent = orjson.loads(ADAPTER.prepare("chat", body, TARGET, stream=False).body)
    assert sent["max_tokens"] == max_tokens
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "stream" not in sent
    assert "system" not in sent


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice(choice: object, expected: dict[str, str]) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": choice,
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert (
        orjson.loads(ADAPTER.prepare("chat", body, TARGET, stream=False).body)["tool_choice"]
        == expected
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "unsupported message role"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n must be 1"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "positive integer"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": 3}, "stop must be"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input_audio"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"messages": [{"role": "system", "content": "x"}]}, "at least one user"),
    ],
)
def test_invalid_requests_are_4xx_with_a_reason(body: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        ADAPTER.prepare("chat", body, TARGET, stream=False)
    assert info.value.status == 400


def test_usage_counts_cache_reads_and_writes_as_input(golden: Golden) -> None:
    _, usage = ADAPTER.parse("chat", golden.raw("anthropic/response_tool.json"), "m")
    # 472 uncached + 100 cache writes + 2048 cache reads; reads are our cached tokens
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (2620, 2048, 89)


def test_stream_golden(golden: Golden) -> None:
    translator = golden.adapter(AnthropicAdapter).stream("claude-sonnet", include_usage=True)
    assert golden.translate(translator, [STREAM]) == STREAM_EXPECTED
    assert translator.finish_reason == "tool_calls"
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (572, 89)
    assert translator.usage.cached_tokens == 100


def test_stream_without_include_usage_keeps_usage_internal(golden: Golden) -> None:
    translator = golden.adapter(AnthropicAdapter).stream("claude-sonnet", include_usage=False)
    events = golden.translate(translator, [STREAM])
    assert events == without_usage(STREAM_EXPECTED)
    assert translator.usage.present
    assert translator.usage.output_tokens == 89


def test_stream_error_event_becomes_an_openai_error_chunk(golden: Golden) -> None:
    translator = golden.adapter(AnthropicAdapter).stream("claude-sonnet", include_usage=True)
    head = STREAM.split(b"event: content_block_stop")[0]
    error = (
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
        b'"message": "Overloaded"}}\n\n'
    )
    events = golden.translate(translator, [head, error])
    assert events[-2] == {
        "error": {
            "message": "anthropic upstream: Overloaded",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_overloaded",
        }
    }
    assert events[-1] == "[DONE]"
    assert isinstance(translator.error, UpstreamError)
    assert translator.finish_reason is None


def _err(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


@pytest.mark.parametrize(
    ("status", "headers", "body", "cls", "code", "our_status"),
    [
        (
            401,
            {},
            _err("authentication_error", "invalid x-api-key"),
            UpstreamAuthFailed,
            "upstream_auth_failed",
            502,
        ),
        (
            403,
            {},
            _err("permission_error", "no access"),
            UpstreamAuthFailed,
            "upstream_permission_denied",
            502,
        ),
        (
            400,
            {},
            _err("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            ContextLengthExceeded,
            "context_length_exceeded",
            400,
        ),
        (
            400,
            {},
            _err("invalid_request_error", "messages: roles must alternate"),
            BadRequest,
            "upstream_invalid_request",
            400,
        ),
        (
            404,
            {},
            _err("not_found_error", "model: claude-9"),
            UpstreamError,
            "upstream_not_found",
            502,
        ),
        (
            529,
            {},
            _err("overloaded_error", "Overloaded"),
            UpstreamError,
            "upstream_overloaded",
            502,
        ),
        (500, {}, b"<html>oops</html>", UpstreamError, "bad_gateway", 502),
    ],
)
def test_error_mapping(
    status: int, headers: dict[str, str], body: bytes, cls: type, code: str, our_status: int
) -> None:
    err = ADAPTER.error(status, headers, body)
    assert_upstream_error(err, cls, code, "anthropic")
    assert err.status == our_status


def test_rate_limit_keeps_retry_after_and_message() -> None:
    err = ADAPTER.error(
        429,
        {"Retry-After": "7", "x-request-id": "r"},
        _err(
            "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"
        ),
    )
    assert isinstance(err, RateLimited)
    assert err.retry_after == 7.0
    assert err.headers["retry-after"] == "7"
    assert "per-minute rate limit" in err.message


def test_error_never_echoes_a_key() -> None:
    err = ADAPTER.error(
        401, {}, _err("authentication_error", "invalid x-api-key sk-ant-api03-abcdefghijklmnop")
    )
    assert "abcdefghijklmnop" not in err.message
