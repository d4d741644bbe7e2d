"""``turnout up --demo`` as a new user runs it: the printed key works with the openai SDK.

Own database, own broker (the Tansu `turnout up` starts), free ports. A second run on the same
database and state dir, with ``TURNOUT_DEMO_PORT`` taken, reuses the demo key and moves the
simulator to a free port.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from turnout.demo import REPLY
from turnout_common.devinfra import free_port
from turnout_common.testing.plugin import fresh_database
from turnout_common.testing.upstream import count_words, prompt_tokens
from turnout_common.testing.waiting import wait_for as poll_until

KEY_LINE = re.compile(r"demo virtual key: (\S+) \(model 'demo-chat'\)")


# this module's deadline and poll interval
wait_for = functools.partial(poll_until, timeout=20.0, interval=0.1)


class Up:
    """One ``turnout up --demo`` subprocess, its output in a file."""

    def __init__(self, state: Path, env: dict[str, str], run: int) -> None:
        self.state = state
        self.log = state.parent / f"up-{run}.log"
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "turnout", "up", "--demo", "--state-dir", str(state)],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> dict[str, str]:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"turnout up --demo exited:\n{self.output()}")
            return "press Ctrl-C to stop" in self.output()

        wait_for(ready, timeout=timeout)
        return dict(json.loads((self.state / "up.json").read_text()))

    def printed_key(self) -> str:
        match = KEY_LINE.search(self.output())
        assert match, self.output()
        return match.group(1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return int(self.proc.returncode)


@pytest.fixture
def demo_env(pg_server_dsn: str) -> Iterator[dict[str, str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TURNOUT_") and not k.startswith("OTEL_")
    }
    with fresh_database(pg_server_dsn, "turnout_demo") as dsn:
        env.update(
            {
                "TURNOUT_DATABASE_URL": dsn,
                "TURNOUT_ROUTER_PORT": str(free_port()),
                "TURNOUT_CONFIG_API_PORT": str(free_port()),
                "TURNOUT_HEALTH_PORT": str(free_port()),
                "TURNOUT_METERING_PORT": str(free_port()),
                "TURNOUT_CONSOLE_PORT": str(free_port()),
                "TURNOUT_UP_KAFKA_PORT": str(free_port()),
                "TURNOUT_DEMO_PORT": str(free_port()),
            }
        )
        yield env


def _usage(info: dict[str, str], request_id: str) -> dict[str, Any] | None:
    r = httpx.get(
        info["metering_url"] + "/api/v1/usage?user_id=demo&limit=100",
        headers={"Authorization": f"Bearer {info['admin_token']}"},
        timeout=10,
    )
    if r.status_code != 200:
        return None
    return next((row for row in r.json()["data"] if row["request_id"] == request_id), None)


def _chat_and_stream(info: dict[str, str], key: str) -> list[dict[str, Any]]:
    """A chat and a stream with the demo key; returns their metering rows."""
    client = OpenAI(base_url=info["router_url"] + "/v1", api_key=key, max_retries=0)
    messages: Any = [{"role": "user", "content": "hello demo"}]
    raw = client.chat.completions.with_raw_response.create(model="demo-chat", messages=messages)
    completion = raw.parse()
    assert completion.choices[0].message.content == REPLY
    assert raw.headers["x-turnout-provider"] == "simulator"
    ids = [raw.headers["x-request-id"]]
    raw_stream = client.chat.completions.with_raw_response.create(
        model="demo-chat", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw_stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == count_words(REPLY)
    ids.append(raw_stream.headers["x-request-id"])
    rows = [wait_for(lambda rid=rid: _usage(info, rid)) for rid in ids]
    for row, stream in zip(rows, (False, True), strict=True):
        assert row["stream"] is stream
        assert (row["model"], row["provider"], row["user_id"]) == ("demo-chat", "simulator", "demo")
        assert (row["input_tokens"], row["output_tokens"]) == (
            prompt_tokens(messages),
            count_words(REPLY),
        )
        assert row["estimated"] is False
        assert float(row["cost_usd"]) > 0
    return rows


def test_up_demo_serves_the_printed_key(tmp_path: Path, demo_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    first = Up(state, demo_env, 1)
    try:
        info = first.wait_ready()
        key = first.printed_key()
        assert info["demo_key"] == key
        demo_port = demo_env["TURNOUT_DEMO_PORT"]
        assert info["simulator_url"] == f"http://127.0.0.1:{demo_port}/v1"
        assert (state / "demo_key").stat().st_mode & 0o777 == 0o600
        # up.json means ready: the very first request with the printed key is served
        _chat_and_stream(info, key)
        credits = wait_for(
            lambda: (
                (
                    r := httpx.get(
                        info["metering_url"] + "/api/v1/credits/demo",
                        headers={"Authorization": f"Bearer {info['admin_token']}"},
                        timeout=10,
                    )
                ).status_code
                == 200
                and float(r.json()["spent_usd"]) > 0
                and r.json()
            )
        )
        assert float(credits["remaining_usd"]) < 5
    finally:
        assert first.stop() == 0, first.output()

    # again, on the same database and state dir, with the demo port taken by someone else
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(demo_env["TURNOUT_DEMO_PORT"])))
        squatter.listen()
        second = Up(state, demo_env, 2)
        try:
            info = second.wait_ready()
            assert second.printed_key() == key, "the demo key was not reused"
            assert f"port {demo_port} is busy" in second.output()
            assert info["simulator_url"] != f"http://127.0.0.1:{demo_port}/v1"
            _chat_and_stream(info, key)  # the provider follows the simulator to its new port
        finally:
            assert second.stop() == 0, second.output()
