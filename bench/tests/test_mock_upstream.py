"""The bench's mock upstream speaks OpenAI's protocol well enough for the official SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from openai import OpenAI

BENCH = Path(__file__).resolve().parents[1]

MESSAGES = [{"role": "user", "content": "hello there"}]


def test_chat_completion_has_exact_usage(mock_url: str) -> None:
    client = OpenAI(base_url=mock_url, api_key="sk-test")
    resp = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=7)
    assert resp.choices[0].message.content
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 7
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + 7


def test_stream_ends_with_usage_chunk(mock_url: str) -> None:
    client = OpenAI(base_url=mock_url, api_key="sk-test")
    chunks = list(
        client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 20  # default --chunks
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 20


def test_delayed_stream_with_chunk_delay(slow_stream_url: str) -> None:
    client = OpenAI(base_url=slow_stream_url, api_key="sk-test")
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    words = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(words) == 5


def test_no_usage_flag_omits_usage(mock_factory: Callable[..., str]) -> None:
    client = OpenAI(base_url=mock_factory("--no-usage"), api_key="sk-test")
    resp = client.chat.completions.create(model="m", messages=MESSAGES)
    assert resp.usage is None
    chunks = list(
        client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks
    assert all(c.usage is None for c in chunks)


def test_ttft_probe_reports_percentiles(slow_stream_url: str) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "ttft_probe.py"), "--url",
         slow_stream_url + "/chat/completions", "-c", "2", "--n", "6", "--warmup", "1"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("TTFT "))
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    assert fields["n"] == "6"
    assert fields["errors"] == "0"
    assert float(fields["ttft_p50_ms"]) <= float(fields["total_p50_ms"])


def test_unknown_path_is_a_json_404(mock_url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(mock_url + "/nope", timeout=5)
    assert info.value.code == 404
    assert "unknown path" in json.loads(info.value.read())["error"]["message"]
