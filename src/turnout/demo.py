"""``turnout up --demo``: a local OpenAI-compatible simulator, configured through the admin API.

A new user sees a routed, metered request within a minute, without any cloud key. The
simulator listens on ``TURNOUT_DEMO_PORT`` (default 8090; a free port if that one is busy).
Running ``--demo`` again against the same database and state dir is idempotent: the simulator
provider is pointed at this run's URL, the chat route is only set when none exists, and the
demo key in ``<state-dir>/demo_key`` is reused while config-api still accepts it.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI

DEFAULT_PORT = 8090
REPLY = "Hello from the Turnout demo simulator: this answer was routed and metered."
_KEEP: list[LocalServer] = []


def _say(msg: str) -> None:
    print(f"turnout up | demo: {msg}", flush=True)


def _request(
    url: str, token: str, method: str = "GET", body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    req = urllib.request.Request(  # noqa: S310 - local URLs of this `turnout up`
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return int(resp.status), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _call(config_url: str, token: str, method: str, path: str, body: dict[str, Any]) -> Any:
    """One admin call; None on 409 (already configured by an earlier ``--demo``)."""
    status, data = _request(config_url + "/api/v1" + path, token, method, body)
    if status == 409:
        return None
    if status >= 300:
        raise RuntimeError(f"demo setup: {method} {path} -> {status} {data!r}")
    return data


def _start_simulator() -> LocalServer:
    port = int(os.environ.get("TURNOUT_DEMO_PORT", str(DEFAULT_PORT)))
    fake = FakeOpenAI(name="simulator")
    fake.behaviour.reply = REPLY
    fake.behaviour.delay_s = 0.02
    fake.behaviour.tool_call = True  # answers tool calls (and JSON mode, always)
    try:
        server = LocalServer(fake.app, port=port).start()
    except OSError:
        server = LocalServer(fake.app).start()
        _say(f"port {port} is busy (TURNOUT_DEMO_PORT); the simulator uses {server.port}")
    _KEEP.append(server)
    return server


def _demo_key(cfg: str, tok: str, state_dir: Path) -> str:
    """The key in ``demo_key`` if config-api still accepts it, else a new one (saved)."""
    key_file = state_dir / "demo_key"
    if key_file.exists():
        key = key_file.read_text().strip()
        # a virtual key may read its own keys: 200 proves it exists and is not revoked
        if key and _request(cfg + "/api/v1/keys", key)[0] == 200:
            return key
    key = str(_call(cfg, tok, "POST", "/keys", {"user_id": "demo", "name": "demo"})["key"])
    key_file.unlink(missing_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(key)
    return key


def _wait_routable(router_url: str, key: str, revision: int, timeout: float) -> bool:
    """Until the router has applied config ``revision`` (every demo change: config reaches it
    over Kafka) and knows the key and the model. Knowing the model is not enough: on a second
    ``--demo`` the simulator may have moved, and the router must have the new base_url."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, ready = _request(router_url + "/readyz", key)
        applied = ready.get("config_revision", 0) if isinstance(ready, dict) else 0
        if status == 200 and applied >= revision:
            status, data = _request(router_url + "/v1/models", key)
            if status == 200 and "demo-chat" in {m.get("id") for m in data.get("data", [])}:
                return True
        time.sleep(0.1)
    return False


DEMO_MODELS = (
    {"upstream_model": "sim-chat", "name": "demo-chat", "purposes": ["chat", "completion"],
     "input_price_per_mtok": 0.10, "output_price_per_mtok": 0.20},
    {"upstream_model": "sim-embed", "name": "demo-embed", "purposes": ["embeddings"],
     "input_price_per_mtok": 0.02, "output_price_per_mtok": 0},
)  # fmt: skip
"""The simulator's two models, as ``POST /models`` bodies (with its provider, 8k context)."""


def start_demo(info: dict[str, str], state_dir: Path) -> dict[str, str]:
    server = _start_simulator()
    base_url = server.url + "/v1"
    cfg, tok = info["config_url"], info["admin_token"]
    provider = {
        "name": "simulator",
        "kind": "openai_compatible",
        "base_url": base_url,
        "api_key": "sk-demo-simulator-0000",
    }
    if _call(cfg, tok, "POST", "/providers", provider) is None:
        _call(cfg, tok, "PATCH", "/providers/simulator", {"base_url": base_url})
    for model in DEMO_MODELS:
        body = {"provider": "simulator", "context_window": 8192, **model}
        _call(cfg, tok, "POST", "/models", body)
    status, routes = _request(cfg + "/api/v1/routes", tok)
    if status == 200 and not any(r.get("purpose") == "chat" for r in routes["data"]):
        _call(cfg, tok, "PUT", "/routes/chat", {"model": "demo-chat", "fallbacks": []})
    _call(
        cfg, tok, "POST", "/users", {"id": "demo", "tier": "professional", "monthly_budget_usd": 5}
    )
    key = _demo_key(cfg, tok, state_dir)
    status, snapshot = _request(cfg + "/api/v1/snapshot", tok)
    revision = int(snapshot.get("revision", 0)) if status == 200 else 0
    if not _wait_routable(info["router_url"], key, revision, timeout=30):
        _say("the router does not know the demo key yet; it should in a moment")
    _say(f"OpenAI-compatible simulator at {base_url} (provider 'simulator')")
    return {"demo_key": key, "simulator_url": base_url}
