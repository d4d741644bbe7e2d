"""The README's admin walkthrough (issue 14 item 7) runs as written against a fresh stack."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("## Admin walkthrough (curl)") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the walkthrough's sh block"
    return match.group(1)


def test_the_readme_walkthrough_runs(
    tmp_path: Path, start_own_system: Callable[..., AbstractContextManager[Any]]
) -> None:
    fake = FakeOpenAI(name="gpu-box")
    server = LocalServer(fake.app).start()
    try:
        with start_own_system("readme") as stack:
            (tmp_path / ".turnout").symlink_to(stack.state_dir)
            out = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", walkthrough()],
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin:/usr/local/bin", "UPSTREAM": server.url + "/v1"},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert out.returncode == 0, out.stdout + out.stderr
            answer = json.loads((tmp_path / "answer.json").read_text())
            assert answer["model"] == "llama-8b"
            # 4 input tokens x $0.10 + 9 output tokens x $0.20 per 1M tokens, exactly
            assert '"cost_usd": "0.000002200"' in out.stdout, out.stdout
            assert '"input_tokens": 4' in out.stdout, out.stdout
    finally:
        server.stop()
