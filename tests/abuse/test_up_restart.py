"""Issue 21 item 10 and issue 14 items 10-11: `turnout up` keeps the stack alive and never
starts over a running one.

Before: a `kill -9` of metering stopped the whole stack (and with the broker's memory storage,
answered requests were lost); a second `turnout up` reported ready against the first stack's
services and wrote its own admin token into up.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from turnout.ports import holder
from turnout_common.testing.waiting import wait_for


def test_a_second_up_names_the_port_and_touches_nothing(system: Any) -> None:
    before = (system.state_dir / "up.json").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "turnout", "up", "--state-dir", str(system.state_dir)],
        env=system.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    port = system.url("router").rsplit(":", 1)[1]
    assert f"port {port} (router) is already in use by pid" in out.stdout, out.stdout
    assert (system.state_dir / "up.json").read_text() == before
    assert "Bytecode compiled" not in out.stdout + out.stderr


def test_a_killed_service_is_restarted(
    start_own_system: Callable[..., AbstractContextManager[Any]],
) -> None:
    with start_own_system("restart") as stack:
        url = stack.url("metering")
        port = int(url.rsplit(":", 1)[1])
        who = holder(port)
        assert who.startswith("pid "), who
        pid = int(who.split()[1])
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: "metering (exit code -9) died; restarting it" in stack.log(), timeout=20)
        wait_for(lambda: _ready(url), timeout=60)
        assert stack.proc.poll() is None  # the stack kept running
        new = holder(port)
        assert new.startswith("pid ") and int(new.split()[1]) != pid
        info = json.loads((stack.state_dir / "up.json").read_text())
        assert info["metering_url"] == url


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
