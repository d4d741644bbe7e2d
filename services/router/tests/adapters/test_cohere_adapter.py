"""Golden tests: OpenAI ↔ Cohere v2 chat / embed / rerank."""

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
from turnout_router.adapters.base import UpstreamTarget
from turnout_router.adapters.cohere import ADAPTER, CohereAdapter

from .conftest import Golden, assert_upstream_error

TARGET = UpstreamTarget(
    "cohere", "https://api.cohere.com", "command-a-03-2025", api_key="co-test-key-123456"
)
STREAM, STREAM_EXPECTED = Golden.stream_case("cohere/stream_tool")


def test_supports_chat_embeddings_reranking() -> None:
    assert all(ADAPTER.supports(p) for p in ("chat", "embeddings", "reranking"))
    assert not ADAPTER.supports("completion")
    with pytest.raises(BadRequest, match="does not serve 'completion'"):
        ADAPTER.prepare("completion", {"prompt": "x"}, TARGET, stream=False)


def test_chat_request_golden(golden: Golden) -> None:
    req = ADAPTER.prepare(
        "chat", golden.json("cohere/chat_request.openai.json"), TARGET, stream=True
    )
    assert req.url == "https://api.cohere.com/v2/chat"
    assert req.headers["authorization"] == "Bearer co-test-key-123456"
    assert req.headers["accept"] == "text/event-stream"
    assert orjson.loads(req.body) == golden.json("cohere/chat_request.expected.json")


def test_named_tool_choice_offers_only_that_tool() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": {"type": "function", "function": {"name": "b"}},
        "tools": [{"type": "function", "function": {"name": n}} for n in ("a", "b")],
        "response_format": {"type": "json_object"},
    }
    sent = orjson.loads(ADAPTER.prepare("chat", body, TARGET, stream=False).body)
    assert sent["tools"] == [{"type": "function", "function": {"name": "b"}}]
    assert sent["tool_choice"] == "REQUIRED"
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["stream"] is False


def test_billed_units_win_over_raw_tokens(golden: Golden) -> None:
    _, usage = ADAPTER.parse("chat", golden.raw("cohere/response_tool.json"), "command")
    assert (usage.input_tokens, usage.output_tokens, usage.present) == (37, 28, True)


def test_stream_golden(golden: Golden) -> None:
    translator = golden.adapter(CohereAdapter).stream("command", include_usage=True)
    assert golden.translate(translator, [STREAM]) == STREAM_EXPECTED
    assert translator.finish_reason == "tool_calls"
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (37, 21)


def test_embed_round_trip(golden: Golden) -> None:
    req = ADAPTER.prepare(
        "embeddings",
        {"input": ["hello", "goodbye"], "model": "e"},
        UpstreamTarget("cohere", "https://api.cohere.com/v2", "embed-v4.0"),
        stream=False,
    )
    assert req.url == "https://api.cohere.com/v2/embed"
    assert orjson.loads(req.body) == {
        "model": "embed-v4.0",
        "texts": ["hello", "goodbye"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    out, usage = ADAPTER.parse("embeddings", golden.raw("cohere/embed_response.json"), "emb")
    assert orjson.loads(out) == {
        "object": "list",
        "model": "emb",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": [0.016296387, -0.008354187, -0.04699707],
            },
            {"object": "embedding", "index": 1, "embedding": [0.02027893, -0.0013465881, 0.001]},
        ],
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    assert (usage.input_tokens, usage.present) == (2, True)


def test_rerank_round_trip(golden: Golden) -> None:
    body = {
        "model": "rerank",
        "query": "capital of the USA",
        "top_n": 2,
        "documents": [
            "Carson City",
            {"text": "Saipan"},
            "Charlotte",
            "Washington, D.C.",
            "Capital punishment",
        ],
    }
    req = ADAPTER.prepare("reranking", body, TARGET, stream=False)
    assert req.url == "https://api.cohere.com/v2/rerank"
    assert orjson.loads(req.body) == {
        "model": "command-a-03-2025",
        "query": "capital of the USA",
        "top_n": 2,
        "documents": [
            "Carson City",
            "Saipan",
            "Charlotte",
            "Washington, D.C.",
            "Capital punishment",
        ],
    }
    out, usage = golden.adapter(CohereAdapter).parse(
        "reranking", golden.raw("cohere/rerank_response.json"), "rerank"
    )
    assert orjson.loads(out) == {
        "id": "07734bd2-2473-4f07-94e1-0d9f0e6843cf",
        "model": "rerank",
        "results": [
            {"index": 3, "relevance_score": 0.999071},
            {"index": 4, "relevance_score": 0.7867867},
        ],
        "usage": {"total_tokens": 512, "search_units": 1},
    }
    assert (usage.input_tokens, usage.output_tokens, usage.present) == (512, 0, True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": "", "documents": ["a"]}, "query must be"),
        ({"query": "q", "documents": []}, "documents must be"),
        ({"query": "q", "documents": [{"title": "x"}]}, "'text'"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
    ],
)
def test_rerank_validation(body: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        ADAPTER.prepare("reranking", body, TARGET, stream=False)


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            401,
            b'{"id": "x", "message": "invalid api token"}',
            UpstreamAuthFailed,
            "upstream_auth_failed",
        ),
        (498, b'{"message": "invalid api token"}', UpstreamAuthFailed, "upstream_auth_failed"),
        (
            400,
            b'{"message": "too many tokens: total number of tokens in the prompt cannot '
            b'exceed 4081 - received 4500"}',
            ContextLengthExceeded,
            "context_length_exceeded",
        ),
        (
            422,
            b'{"message": "invalid request: message must be at least 1 token long"}',
            BadRequest,
            "upstream_invalid_request",
        ),
        (500, b'{"message": "internal server error"}', UpstreamError, "bad_gateway"),
        (503, b"", UpstreamError, "bad_gateway"),
    ],
)
def test_error_mapping(status: int, body: bytes, cls: type, code: str) -> None:
    assert_upstream_error(ADAPTER.error(status, {}, body), cls, code, "cohere")


def test_rate_limit_with_http_date_retry_after() -> None:
    err = ADAPTER.error(
        429,
        {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
        b'{"message": "You are using a Trial key, which is limited to 10 calls"}',
    )
    assert isinstance(err, RateLimited)
    assert err.retry_after == 0.0  # a date in the past: retry now
    assert "Trial key" in err.message
    seconds = ADAPTER.error(429, {"retry-after": "12"}, b'{"message": "slow down"}')
    assert isinstance(seconds, RateLimited)
    assert seconds.retry_after == 12.0
