"""`turnout config apply / export` against a real database: idempotent, audited, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from turnout_common.crypto import generate_key
from turnout_common.testing.plugin import fresh_database

DOC = """
providers:
  - {name: cli-local, kind: ollama}
  - {name: cli-cloud, kind: together, api_key: "${CLI_TOGETHER_KEY}"}
models:
  - {provider: cli-local, upstream_model: "llama3.2:3b", name: cli-llama, purposes: [chat],
     input_price_per_mtok: 0, output_price_per_mtok: 0}
routes:
  chat: {model: cli-llama, fallbacks: []}
users:
  - {id: cli-dana, monthly_budget_usd: 25}
"""


@pytest.fixture
def env(pg_server_dsn: str) -> Iterator[dict[str, str]]:
    with fresh_database(pg_server_dsn, "turnout_cli") as dsn:
        env = {
            **os.environ,
            "TURNOUT_DATABASE_URL": dsn,
            "TURNOUT_ENCRYPTION_KEYS": generate_key(),
            "CLI_TOGETHER_KEY": "tgp-cli-secret-424242",
        }
        turnout(env, "migrate")
        yield env


def turnout(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "turnout", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc


def test_apply_twice_then_export(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "turnout.yaml"
    path.write_text(DOC)
    planned = turnout(env, "config", "apply", "-f", str(path), "--dry-run").stdout
    assert "+ provider cli-cloud" in planned and "would change 5 entities" in planned
    first = turnout(env, "config", "apply", "-f", str(path)).stdout
    assert first.replace("changed", "would change") == planned
    assert "nothing to change" in turnout(env, "config", "apply", "-f", str(path)).stdout

    exported = turnout(env, "config", "export").stdout
    assert "tgp-cli-secret-424242" not in exported and "api_key_encrypted" not in exported
    doc = yaml.safe_load(exported)
    assert {p["name"] for p in doc["providers"]} == {"cli-local", "cli-cloud"}
    assert doc["routes"]["chat"] == {"model": "cli-llama", "fallbacks": []}


def test_literal_secret_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("providers:\n  - {name: x, kind: openai, api_key: sk-literal-123456}\n")
    proc = turnout(env, "config", "apply", "-f", str(path), ok=False)
    assert proc.returncode == 2 and "error:" in proc.stderr
    assert "sk-literal-123456" not in proc.stderr + proc.stdout


def test_export_next_to_turnout_up_needs_no_settings(system: object, tmp_path: Path) -> None:
    """Issue 14 item 8: right after `turnout up`, `turnout config export` just works (it reads
    the database from .turnout/up.json)."""
    state_dir = system.state_dir  # type: ignore[attr-defined]
    (tmp_path / ".turnout").symlink_to(state_dir)
    drop = ("TURNOUT_DATABASE_URL", "TURNOUT_ENCRYPTION_KEYS", "TURNOUT_STATE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    out = subprocess.run(
        [sys.executable, "-m", "turnout", "config", "export"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert "tiers" in doc and "free" in str(doc["tiers"]), doc
    assert "generate" not in out.stderr
