"""What every translating adapter must do, checked once for each: golden chat responses, and
streams whose output does not depend on how the upstream bytes are cut or line-ended."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout_router.adapters.anthropic import AnthropicAdapter
from turnout_router.adapters.base import Adapter, StreamTranslator
from turnout_router.adapters.cohere import CohereAdapter
from turnout_router.adapters.gemini import GeminiAdapter
from turnout_router.adapters.translation import openai_usage

from .conftest import Golden, split_at, without_usage

AdapterClass = Callable[..., Adapter]

RESPONSES = [
    (AnthropicAdapter, "claude-sonnet", "anthropic/response_text"),
    (AnthropicAdapter, "claude-sonnet", "anthropic/response_tool"),
    (CohereAdapter, "command", "cohere/response_text"),
    (CohereAdapter, "command", "cohere/response_tool"),
    (GeminiAdapter, "gemini-flash", "gemini/response_tool"),
    (GeminiAdapter, "gemini-flash", "gemini/response_safety"),
]
# Golden streams recorded with include_usage=True.
STREAMS = [
    (AnthropicAdapter, "claude-sonnet", "anthropic/stream_tool"),
    (CohereAdapter, "command", "cohere/stream_tool"),
    (GeminiAdapter, "gemini-flash", "gemini/stream_text"),
]


def translator(cls: AdapterClass, model: str, *, include_usage: bool = True) -> StreamTranslator:
    """A fresh translator on a fresh id sequence, so every run names things alike."""
    return Golden().adapter(cls).stream(model, include_usage=include_usage)


@pytest.mark.parametrize(("cls", "model", "name"), RESPONSES)
def test_chat_response_golden(golden: Golden, cls: AdapterClass, model: str, name: str) -> None:
    out, usage = golden.adapter(cls).parse("chat", golden.raw(f"{name}.json"), model)
    expected = golden.json(f"{name}.expected.json")
    assert orjson.loads(out) == expected
    assert usage.present
    assert openai_usage(usage) == expected["usage"]


@pytest.mark.parametrize(("cls", "model", "name"), STREAMS)
def test_stream_split_at_every_byte_boundary(cls: AdapterClass, model: str, name: str) -> None:
    stream, expected = Golden.stream_case(name)
    whole = Golden.run(translator(cls, model), [stream])
    assert Golden.events(whole) == expected
    for cut in range(1, len(stream)):
        assert Golden.run(translator(cls, model), split_at(stream, [cut])) == whole, cut


@pytest.mark.parametrize(("cls", "model", "name"), STREAMS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_stream_same_output_whatever_the_chunking(
    cls: AdapterClass, model: str, name: str, data: st.DataObject
) -> None:
    stream, expected = Golden.stream_case(name)
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(stream) - 1), max_size=60))
    include_usage = data.draw(st.booleans())
    events = Golden.translate(
        translator(cls, model, include_usage=include_usage), split_at(stream, cuts)
    )
    assert events == (expected if include_usage else without_usage(expected))


@pytest.mark.parametrize(("cls", "model", "name"), STREAMS)
def test_stream_crlf_line_endings(cls: AdapterClass, model: str, name: str) -> None:
    stream, expected = Golden.stream_case(name)
    crlf = stream.replace(b"\n", b"\r\n")
    assert Golden.translate(translator(cls, model), split_at(crlf, range(0, len(crlf), 7))) == (
        expected
    )
