"""`python -m turnout serve router` as a real process (Granian RSGI) with the openai SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from turnout_common.devinfra import free_port
from turnout_common.testing.plugin import kafka_env

ADMIN = "admin-test-token"
ALICE_KEY = "tk-alice-test-key-000000000000000000000000"


@pytest.fixture(scope="module", params=["embedded", "workers"])
def router_process(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    config_server: Any,
    world: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, float]]:
    port = free_port()
    state = tmp_path_factory.mktemp("router-proc")
    env = {
        **os.environ,
        **kafka_env(kafka_bootstrap),
        "TURNOUT_ROUTER_PORT": str(port),
        "TURNOUT_CONFIG_URL": config_server.url,
        "TURNOUT_ADMIN_TOKEN": ADMIN,
        "TURNOUT_ENCRYPTION_KEYS": world.enc_key,
        "TURNOUT_STATE_DIR": str(state),
        "TURNOUT_LOG_LEVEL": "WARNING",
        "TURNOUT_ROUTER_SERVER": request.param,
    }
    log = open(Path(state) / "router.log", "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnout", "serve", "router"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert proc.poll() is None, (Path(state) / "router.log").read_text()
            assert time.monotonic() - t0 < 30, "router process not ready"
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        yield url, time.monotonic() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_openai_sdk_against_the_real_server(router_process: tuple[str, float]) -> None:
    url, ready_s = router_process
    print(f"router process ready in {ready_s:.2f}s")
    c = openai.OpenAI(base_url=url + "/v1", api_key=ALICE_KEY, max_retries=0)
    raw = c.chat.completions.with_raw_response.create(
        model="primary", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-turnout-model"] == "primary"
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().choices[0].message.content.startswith("Hello")
    chunks = list(
        c.chat.completions.create(
            model="auto",
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-power-level": "eco"},
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "Hello from the fake upstream, how can I help"
    emb = c.embeddings.create(model="emb", input="hello world")
    assert len(emb.data[0].embedding) == 8
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="tk-bad", max_retries=0).models.list()
