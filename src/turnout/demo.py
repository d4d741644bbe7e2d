"""``turnout up --demo``: a local OpenAI-compatible simulator, configured through the admin API.

A new user sees a routed, metered request within a minute, without any cloud key.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI

_KEEP: list[LocalServer] = []


def _call(config_url: str, token: str, method: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(  # noqa: S310 - local admin API
        config_url + "/api/v1" + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 409:  # already configured by an earlier `turnout up --demo`
            return None
        raise RuntimeError(f"demo setup: {method} {path} -> {exc.code} {exc.read()!r}") from exc


def start_demo(info: dict[str, str], state_dir: Path) -> dict[str, str]:
    port = int(os.environ.get("TURNOUT_DEMO_PORT", "8090"))
    fake = FakeOpenAI(name="simulator")
    fake.behaviour.delay_s = 0.02
    server = LocalServer(fake.app, port=port).start()
    _KEEP.append(server)
    cfg, tok = info["config_url"], info["admin_token"]
    _call(
        cfg,
        tok,
        "POST",
        "/providers",
        {
            "name": "simulator",
            "kind": "openai_compatible",
            "base_url": server.url + "/v1",
            "api_key": "sk-demo-simulator-0000",
        },
    )
    _call(
        cfg,
        tok,
        "POST",
        "/models",
        {
            "provider": "simulator",
            "upstream_model": "sim-chat",
            "name": "demo-chat",
            "purposes": ["chat", "completion"],
            "context_window": 8192,
            "input_price_per_mtok": 0.10,
            "output_price_per_mtok": 0.20,
        },
    )
    _call(
        cfg,
        tok,
        "POST",
        "/models",
        {
            "provider": "simulator",
            "upstream_model": "sim-embed",
            "name": "demo-embed",
            "purposes": ["embeddings"],
            "context_window": 8192,
            "input_price_per_mtok": 0.02,
            "output_price_per_mtok": 0,
        },
    )
    _call(cfg, tok, "PUT", "/routes/chat", {"model": "demo-chat", "fallbacks": []})
    _call(
        cfg, tok, "POST", "/users", {"id": "demo", "tier": "professional", "monthly_budget_usd": 5}
    )
    key_file = state_dir / "demo_key"
    if key_file.exists():
        key = key_file.read_text().strip()
    else:
        key = _call(cfg, tok, "POST", "/keys", {"user_id": "demo", "name": "demo"})["key"]
        key_file.touch(mode=0o600)
        key_file.write_text(key)
    return {"demo_key": key, "simulator_url": server.url + "/v1"}
