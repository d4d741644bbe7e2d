"""`turnout serve metering` as a real process: ready once config and the consumer run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx

from turnout_common.devinfra import free_port
from turnout_common.testing.plugin import kafka_env
from turnout_common.testing.servers import LocalServer

from .conftest import ADMIN


def test_serve_becomes_ready(
    database_url: str, kafka_bootstrap: str, snapshot_server: LocalServer
) -> None:
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        **kafka_env(kafka_bootstrap),
        "TURNOUT_DATABASE_URL": database_url,
        "TURNOUT_ADMIN_TOKEN": ADMIN,
        "TURNOUT_CONFIG_URL": snapshot_server.url,
        "TURNOUT_METERING_PORT": str(port),
        "TURNOUT_METERING_SCHEMA": f"metering_{tag}",
        "TURNOUT_METERING_GROUP": f"serve-{tag}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnout", "serve", "metering"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(url + "/readyz", timeout=2).status_code
            except httpx.HTTPError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, proc.stderr.read().decode() if proc.poll() is not None else status
        resp = httpx.get(url + "/api/v1/usage", headers={"Authorization": f"Bearer {ADMIN}"})
        # the shared test broker carries other tests' usage, so only the shape is checked here
        assert resp.status_code == 200 and isinstance(resp.json()["total"], int)
        assert httpx.get(url + "/api/v1/usage").status_code == 401
    finally:
        proc.terminate()
        proc.wait(15)
