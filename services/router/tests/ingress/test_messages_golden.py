# ruff: noqa: E501  (fixture data reads best one event per line)
"""Golden tests of the Anthropic Messages door's transforms, both ways, without I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from turnout_common.errors import BadRequest, RateLimited, ValidationFailed
from turnout_router.adapters.base import UsageCounts
from turnout_router.adapters.openai import OpenAIStream
from turnout_router.ingress.chunks import OpenAIChunks, TranslatedChunks
from turnout_router.ingress.messages import error_body, from_chat, to_chat
from turnout_router.ingress.messages_stream import MessagesEncoder, NativeMessagesStream

WEATHER = {
    "name": "get_weather",
    "description": "The weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_request_to_chat() -> None:
    body = {
        "model": "claude",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief."}],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {"c": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tu_1", "content": "sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "tu_2",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom"}],
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
    }
    assert to_chat(body) == {
        "model": "claude",
        "max_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "user": "u-1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER["input_schema"],
                    "description": "The weather",
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "tu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"c":1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "tu_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "tu_2", "content": "[tool error] boom"},
            {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
        ],
    }


@pytest.mark.parametrize(
    ("body", "err", "says"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, ValidationFailed, "max_tokens"),
        ({"model": "m", "max_tokens": 1, "messages": []}, ValidationFailed, "messages"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}, BadRequest, "role"),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "document"}]}]},
            BadRequest,
            "'document' has no chat-completions form",
        ),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "w"}]},
            BadRequest,
            "server tools (web_search_20250305) have no chat",
        ),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "x"}},
            BadRequest,
            "tool_choice",
        ),
    ],
)  # fmt: skip
def test_request_refused(body: dict[str, Any], err: type[Exception], says: str) -> None:
    with pytest.raises(err) as info:
        to_chat(body)
    assert says in str(info.value)


def test_response_from_chat() -> None:
    chat = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    usage = UsageCounts(input_tokens=30, output_tokens=7, cached_tokens=10, present=True)
    assert from_chat(chat, usage, "claude", "msg_1") == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        # 20 uncached + 10 cached = the record's 30 input tokens
        "usage": {
            "input_tokens": 20,
            "output_tokens": 7,
            "cache_read_input_tokens": 10,
            "cache_creation_input_tokens": 0,
        },
    }


def test_error_shape() -> None:
    assert error_body(RateLimited("slow down")) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _events(out: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for ev in b"".join(out).split(b"\n\n"):
        if ev:
            head, data = ev.split(b"\n", 1)
            events.append((head.decode()[7:], orjson.loads(data[6:])))
    return events


@pytest.mark.parametrize(
    "source",
    [OpenAIChunks, lambda: TranslatedChunks(OpenAIStream("up", include_usage=True))],
    ids=["openai-parsed-once", "translator-output"],
)
def test_stream_from_chat_chunks(source: Any) -> None:
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "up"}
    upstream = b"".join(
        [
            _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            _sse({**base, "choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
            _sse({**base, "choices": [{"index": 0, "delta": {"content": " there"}}]}),
            _sse(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": "call_1",
                                        "type": "function",
                                        "function": {"name": "get_weather", "arguments": ""},
                                    }
                                ]
                            },
                        }
                    ],
                }
            ),
            _sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}}]}),
            _sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}}]}),
            _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            _sse({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 2}}}),
            b"data: [DONE]\n\n",
        ]
    )  # fmt: skip
    enc = MessagesEncoder(source(), "msg_1", "claude")
    out: list[bytes] = []
    for i in range(0, len(upstream), 7):  # any byte boundaries
        out += enc.feed(upstream[i : i + 7])
    out += enc.close()
    events = _events(out)
    assert [k for k, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(k == d["type"] for k, d in events)
    assert events[0][1]["message"]["id"] == "msg_1"
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[4][1]["delta"] == {"type": "text_delta", "text": " there"}
    assert events[6][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "input": {},
        "name": "get_weather",
    }
    assert events[8][1] == {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
    }
    assert events[10][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 2,
            "cache_creation_input_tokens": 0,
        },
    }
    assert (enc.usage.input_tokens, enc.usage.output_tokens, enc.usage.cached_tokens) == (12, 5, 2)


def test_stream_error_mid_stream() -> None:
    source = OpenAIChunks
    enc = MessagesEncoder(source(), "msg_1", "claude")
    out = enc.feed(_sse({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}))
    out += enc.feed(_sse({"error": {"message": "provider X reported an error", "type": "x"}}))
    out += enc.close()
    kinds = [k for k, _ in _events(out)]
    assert kinds[-1] == "error" and "message_stop" not in kinds
    assert _events(out)[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "provider X reported an error"},
    }


def test_native_stream_passes_through() -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_up",
            "model": "claude-upstream-name",
            "usage": {"input_tokens": 9, "cache_read_input_tokens": 4, "output_tokens": 1},
        },
    }
    upstream = (
        b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n"
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":6}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )  # fmt: skip
    tr = NativeMessagesStream("claude")
    out: list[bytes] = []
    for i in range(0, len(upstream), 5):
        out += tr.feed(upstream[i : i + 5])
    out += tr.close()
    joined = b"".join(out)
    rewritten = orjson.loads(out[0].split(b"data: ", 1)[1])
    assert rewritten["message"]["model"] == "claude"  # only the model name changes
    assert joined.split(b"\n\n", 1)[1] == upstream.split(b"\n\n", 1)[1]
    assert (tr.usage.input_tokens, tr.usage.cached_tokens, tr.usage.output_tokens) == (13, 4, 6)
    assert tr.finish_reason == "end_turn" and tr.output_chars == 5
