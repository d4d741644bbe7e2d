"""`turnout up` against the test PostgreSQL and broker: ready, up.json, clean shutdown."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from turnout_common.devinfra import free_port
from turnout_common.testing.plugin import kafka_env


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_starts_everything_writes_up_json_and_stops_cleanly(
    tmp_path: Path, database_url: str, kafka_bootstrap: str
) -> None:
    ports = {
        f"TURNOUT_{k}_PORT": str(free_port())
        for k in ("ROUTER", "CONFIG_API", "HEALTH", "METERING", "CONSOLE")
    }
    env = {
        **os.environ,
        **kafka_env(kafka_bootstrap),
        **ports,
        "TURNOUT_DATABASE_URL": database_url,
    }
    env.pop("TURNOUT_ENCRYPTION_KEYS", None)
    env.pop("TURNOUT_ADMIN_TOKEN", None)
    state = tmp_path / "state"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnout", "up", "--state-dir", str(state)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        up_json = state / "up.json"
        while not up_json.exists():
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() - started < 60, "turnout up not ready within 60 s"
            time.sleep(0.2)
        info = json.loads(up_json.read_text())
        assert set(info) >= {
            "admin_token",
            "router_url",
            "config_url",
            "health_url",
            "metering_url",
            "console_url",
        }
        assert info["router_url"].endswith(ports["TURNOUT_ROUTER_PORT"])
        assert info["console_url"].endswith(ports["TURNOUT_CONSOLE_PORT"])
        for key in ("router_url", "config_url", "health_url", "metering_url", "console_url"):
            assert _status(info[key] + "/healthz") == 200, key
        secrets = state / "secrets.json"
        assert secrets.stat().st_mode & 0o777 == 0o600
        assert json.loads(secrets.read_text())["admin_token"] == info["admin_token"]
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) >= 4
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert not (state / "up.json").exists()
    for pid in children:
        assert not _alive(int(pid)), f"child {pid} left behind"
    assert b"admin token" in out
