"""Golden tests: OpenAI ↔ Cohere v2 chat / embed / rerank."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout_common.errors import (
    BadRequest,
    ContextLengthExceeded,
    RateLimited,
    UpstreamAuthFailed,
    UpstreamError,
)
from turnout_router.adapters.base import UpstreamTarget
from turnout_router.adapters.cohere import ADAPTER, CohereAdapter

from .conftest import Golden, split_at

TARGET = UpstreamTarget(
    "cohere", "https://api.cohere.com", "command-a-03-2025", api_key="co-test-key-123456"
)
STREAM = Golden.raw("cohere/stream_tool.sse")
STREAM_EXPECTED = Golden.json("cohere/stream_tool.expected.json")


def adapter(golden: Golden) -> CohereAdapter:
    return CohereAdapter(clock=golden.clock, new_id=golden.new_id)


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


@pytest.mark.parametrize("name", ["response_text", "response_tool"])
def test_chat_response_golden(golden: Golden, name: str) -> None:
    out, usage = adapter(golden).parse("chat", golden.raw(f"cohere/{name}.json"), "command")
    expected = golden.json(f"cohere/{name}.expected.json")
    assert orjson.loads(out) == expected
    assert (usage.input_tokens, usage.output_tokens) == (
        expected["usage"]["prompt_tokens"],
        expected["usage"]["completion_tokens"],
    )


def test_billed_units_win_over_raw_tokens(golden: Golden) -> None:
    _, usage = ADAPTER.parse("chat", golden.raw("cohere/response_tool.json"), "command")
    assert (usage.input_tokens, usage.output_tokens, usage.present) == (37, 28, True)


def test_stream_golden(golden: Golden) -> None:
    translator = adapter(golden).stream("command", include_usage=True)
    assert golden.events(golden.run(translator, [STREAM])) == STREAM_EXPECTED
    assert translator.finish_reason == "tool_calls"
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (37, 21)


def test_stream_split_at_every_byte_boundary(golden: Golden) -> None:
    for cut in range(1, len(STREAM)):
        translator = CohereAdapter(clock=golden.clock).stream("command", include_usage=True)
        assert golden.events(golden.run(translator, split_at(STREAM, [cut]))) == (
            STREAM_EXPECTED
        ), cut


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=40))
def test_stream_same_output_whatever_the_chunking(cuts: list[int]) -> None:
    golden = Golden()
    translator = adapter(golden).stream("command", include_usage=False)
    events = golden.events(golden.run(translator, split_at(STREAM, cuts)))
    assert events == [e for e in STREAM_EXPECTED if e == "[DONE]" or e["choices"]]


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
    out, usage = adapter(golden).parse(
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
    err = ADAPTER.error(status, {}, body)
    assert type(err) is cls
    assert err.code == code
    assert err.message.startswith("cohere upstream: ")


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
