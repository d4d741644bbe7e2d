"""Golden tests of the OpenAI Responses door's transforms, both ways, without I/O."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from turnout_common.errors import BadRequest
from turnout_router.adapters.base import UsageCounts
from turnout_router.adapters.openai import OpenAIStream
from turnout_router.ingress.chunks import OpenAIChunks, TranslatedChunks
from turnout_router.ingress.responses import from_chat, to_chat
from turnout_router.ingress.responses_stream import ResponsesEncoder

FN = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


def ids() -> Any:
    n = itertools.count(1)
    return lambda prefix: f"{prefix}{next(n)}"


def test_request_to_chat() -> None:
    body = {
        "model": "gpt",
        "instructions": "Be brief.",
        "max_output_tokens": 64,
        "temperature": 0.3,
        "parallel_tool_calls": False,
        "tools": [FN],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        "store": False,
        "stream": True,
        "input": [
            {"role": "developer", "content": "Use tools."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather here?"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Looking."}],
            },
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "c2",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "rain"}],
            },
        ],
    }
    assert to_chat(body) == {
        "model": "gpt",
        "max_tokens": 64,
        "temperature": 0.3,
        "parallel_tool_calls": False,
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}},
        },
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Use tools."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Looking.",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": "rain"},
        ],
    }


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"store": True}, "does not store responses"),
        ({"previous_response_id": "resp_1"}, "does not store responses"),
        ({"conversation": "conv_1"}, "does not store responses"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "hosted tools ('web_search') have no chat"),
        (
            {"input": [{"type": "item_reference", "id": "x"}]},
            "'item_reference' has no chat-completions form",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "'input_file'",
        ),
    ],
)
def test_request_refused(extra: dict[str, Any], says: str) -> None:
    with pytest.raises(BadRequest) as info:
        to_chat({"model": "gpt", "input": "hi", **extra})
    assert says in info.value.message


def test_response_from_chat() -> None:
    chat = {
        "choices": [
            {
                "message": {
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
        ]
    }
    usage = UsageCounts(input_tokens=30, output_tokens=7, cached_tokens=10, present=True)
    resp = from_chat(
        chat, usage, "gpt", {"model": "gpt", "input": "hi", "tools": [FN]}, ids(), 1700
    )
    assert resp["id"] == "resp_1" and resp["created_at"] == 1700 and resp["status"] == "completed"
    assert resp["tools"] == [FN] and resp["store"] is False
    assert resp["output"] == [
        {
            "type": "message",
            "id": "msg_2",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}
            ],
        },
        {
            "type": "function_call",
            "id": "fc_3",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
    ]
    assert resp["usage"] == {
        "input_tokens": 30,
        "input_tokens_details": {"cached_tokens": 10},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 37,
    }
    cut = {"choices": [{"message": {"content": "Par"}, "finish_reason": "length"}]}
    resp = from_chat(cut, usage, "gpt", {}, ids(), 1700)
    assert resp["status"] == "incomplete"
    assert resp["incomplete_details"] == {"reason": "max_output_tokens"}


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


@pytest.mark.parametrize(
    "source",
    [OpenAIChunks, lambda: TranslatedChunks(OpenAIStream("up", include_usage=True))],
    ids=["openai-parsed-once", "translator-output"],
)
def test_stream_from_chat_chunks(source: Any) -> None:
    upstream = b"".join(
        [
            _sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            _sse({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
            _sse({"choices": [{"index": 0, "delta": {"content": " there"}}]}),
            _sse(
                {
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": "call_1",
                                        "function": {"name": "get_weather", "arguments": ""},
                                    }
                                ]
                            },
                        }
                    ]
                }
            ),
            _sse(
                {
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {"index": 0, "function": {"arguments": '{"city":"Paris"}'}}
                                ]
                            },
                        }
                    ]
                }
            ),
            _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            _sse({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}),
            b"data: [DONE]\n\n",
        ]
    )
    enc = ResponsesEncoder(source(), {"model": "gpt"}, "gpt", ids(), 1700)
    out: list[bytes] = []
    for i in range(0, len(upstream), 11):
        out += enc.feed(upstream[i : i + 11])
    out += enc.close()
    events = []
    for ev in b"".join(out).split(b"\n\n"):
        if ev:
            head, data = ev.split(b"\n", 1)
            events.append((head.decode()[7:], orjson.loads(data[6:])))
    assert [k for k, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [d["sequence_number"] for _, d in events] == list(range(14))
    assert all(k == d["type"] for k, d in events)
    assert events[0][1]["response"]["status"] == "in_progress"
    assert events[6][1] == {
        "type": "response.output_text.done",
        "item_id": "msg_2",
        "output_index": 0,
        "content_index": 0,
        "text": "Hi there",
        "logprobs": [],
        "sequence_number": 6,
    }
    assert events[10][1]["delta"] == '{"city":"Paris"}' and events[10][1]["output_index"] == 1
    done = events[-1][1]["response"]
    assert done["id"] == "resp_1" and done["status"] == "completed"
    assert [o["type"] for o in done["output"]] == ["message", "function_call"]
    assert done["output"][1]["arguments"] == '{"city":"Paris"}'
    assert done["usage"]["input_tokens"] == 12 and done["usage"]["output_tokens"] == 5
    assert (enc.usage.input_tokens, enc.usage.output_tokens) == (12, 5)


def test_stream_error_mid_stream() -> None:
    source = OpenAIChunks
    enc = ResponsesEncoder(source(), {}, "gpt", ids(), 1700)
    out = enc.feed(_sse({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}))
    out += enc.feed(_sse({"error": {"message": "provider X reported an error"}}))
    out += enc.close()
    last = out[-1]
    assert last.startswith(b"event: response.failed\n")
    failed = orjson.loads(last.split(b"data: ", 1)[1])
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["message"] == "provider X reported an error"


def test_native_stream_passes_through() -> None:
    from turnout_router.ingress.responses_native import NativeResponsesStream

    usage = {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 5}, "output_tokens": 3}
    created = {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-up"}}
    delta = {"type": "response.output_text.delta", "item_id": "m", "delta": "Hello"}
    done = {
        "type": "response.completed",
        "response": {"id": "resp_1", "model": "gpt-up", "status": "completed", "usage": usage},
    }
    upstream = b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
        for e in (created, delta, done)
    )
    tr = NativeResponsesStream("gpt")
    out: list[bytes] = []
    for i in range(0, len(upstream), 9):
        out += tr.feed(upstream[i : i + 9])
    out += tr.close()
    assert len(out) == 3
    assert orjson.loads(out[0].split(b"data: ", 1)[1])["response"]["model"] == "gpt"
    assert out[1] == upstream.split(b"\n\n")[1] + b"\n\n"  # deltas untouched
    assert orjson.loads(out[2].split(b"data: ", 1)[1])["response"]["model"] == "gpt"
    assert (tr.usage.input_tokens, tr.usage.cached_tokens, tr.usage.output_tokens) == (20, 5, 3)
    assert tr.finish_reason == "completed" and tr.output_chars == 5
