"""Golden-test helpers for the translating adapters: fixture files, a fixed clock and ids,
stream runs, and the error-mapping check they share."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from turnout_common.errors import TurnoutError
from turnout_router.adapters.base import StreamTranslator

FIXTURES = Path(__file__).parent / "fixtures"
CREATED = 1_700_000_000
AdapterT = TypeVar("AdapterT")


class Golden:
    """Reads ``fixtures/<provider>/<name>`` and runs stream translators over byte slices."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def clock(self) -> int:
        return CREATED

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def adapter(self, cls: Callable[..., AdapterT]) -> AdapterT:
        """An adapter on this fixed clock and id sequence."""
        return cls(clock=self.clock, new_id=self.new_id)

    @staticmethod
    def raw(path: str) -> bytes:
        return (FIXTURES / path).read_bytes()

    @staticmethod
    def json(path: str) -> Any:
        return orjson.loads((FIXTURES / path).read_bytes())

    @staticmethod
    def stream_case(name: str) -> tuple[bytes, list[Any]]:
        """``<name>.sse`` and the OpenAI events it must become, ``<name>.expected.json``."""
        return Golden.raw(f"{name}.sse"), Golden.json(f"{name}.expected.json")

    @staticmethod
    def events(out: bytes) -> list[Any]:
        """OpenAI SSE bytes → parsed ``data:`` payloads (``"[DONE]"`` kept as a string)."""
        events: list[Any] = []
        for block in out.split(b"\n\n"):
            if not block:
                continue
            assert block.startswith(b"data: "), block
            payload = block[len(b"data: ") :]
            events.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
        return events

    @staticmethod
    def run(translator: StreamTranslator, chunks: Iterable[bytes]) -> bytes:
        out: list[bytes] = []
        for chunk in chunks:
            for event in translator.feed(chunk):
                assert event.endswith(b"\n\n")
                out.append(event)
        out.extend(translator.close())
        assert out[-1] == b"data: [DONE]\n\n"
        return b"".join(out)

    @staticmethod
    def translate(translator: StreamTranslator, chunks: Iterable[bytes]) -> list[Any]:
        """:meth:`run`, parsed with :meth:`events`."""
        return Golden.events(Golden.run(translator, chunks))


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


def without_usage(events: list[Any]) -> list[Any]:
    """The events of an ``include_usage`` stream that a client that did not ask for usage gets."""
    return [e for e in events if e == "[DONE]" or e["choices"]]


def assert_upstream_error(err: TurnoutError, cls: type, code: str, provider: str) -> None:
    assert type(err) is cls
    assert err.code == code
    assert err.message.startswith(f"{provider} upstream: ")


@pytest.fixture
def golden() -> Golden:
    return Golden()


@pytest.fixture
def splitter() -> Callable[[bytes, Iterable[int]], list[bytes]]:
    return split_at
