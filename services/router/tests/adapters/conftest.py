"""Golden-test helpers for the translating adapters: fixture files, a fixed clock and ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from turnout_router.adapters.base import StreamTranslator

FIXTURES = Path(__file__).parent / "fixtures"
CREATED = 1_700_000_000


class Golden:
    """Reads ``fixtures/<provider>/<name>`` and runs stream translators over byte slices."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def clock(self) -> int:
        return CREATED

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    @staticmethod
    def raw(path: str) -> bytes:
        return (FIXTURES / path).read_bytes()

    @staticmethod
    def json(path: str) -> Any:
        return orjson.loads((FIXTURES / path).read_bytes())

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


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


@pytest.fixture
def golden() -> Golden:
    return Golden()


@pytest.fixture
def splitter() -> Callable[[bytes, Iterable[int]], list[bytes]]:
    return split_at
