"""Live provider checks, the right probe per kind (httpx; low volume, so its pool is fine)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from turnout_config_api.kinds import server_root

ANTHROPIC_VERSION = "2023-06-01"


@dataclass
class Probe:
    ok: bool
    status: str
    http_status: int | None
    latency_ms: float
    message: str
    models: list[str] = field(default_factory=list)


def _openai_ids(body: Any) -> list[str]:
    items = body.get("data", []) if isinstance(body, dict) else []
    return [str(m.get("id")) for m in items if isinstance(m, dict) and m.get("id")]


def _plan(kind: str, base_url: str, key: str | None) -> list[tuple[str, dict[str, str]]]:
    """The GET requests to make, in order; the last one lists models."""
    bearer = {"Authorization": f"Bearer {key}"} if key else {}
    root = server_root(base_url)
    if kind == "vllm":
        return [(f"{root}/health", bearer), (f"{base_url}/models", bearer)]
    if kind == "llamacpp":
        return [(f"{root}/health", bearer), (f"{root}/v1/models", bearer)]
    if kind == "ollama":
        return [(f"{root}/api/tags", {})]
    if kind == "anthropic":
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return [(f"{base_url}/v1/models", headers)]
    if kind == "google":
        return [(f"{base_url}/v1beta/models", {"x-goog-api-key": key} if key else {})]
    if kind == "cohere":
        return [(f"{base_url}/v1/models", bearer)]
    return [(f"{base_url}/models", bearer)]


def _model_ids(kind: str, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    if kind == "ollama":
        return [str(m.get("name")) for m in body.get("models", []) if isinstance(m, dict)]
    if kind == "google":
        names = [str(m.get("name", "")) for m in body.get("models", []) if isinstance(m, dict)]
        return [n.removeprefix("models/") for n in names if n]
    if kind == "cohere":
        return [str(m.get("name")) for m in body.get("models", []) if isinstance(m, dict)]
    return _openai_ids(body)


async def probe(
    http: httpx.AsyncClient, kind: str, base_url: str, key: str | None, timeout: float
) -> Probe:
    """Run the kind's checks; never raises for upstream trouble (it is the answer)."""
    start = time.perf_counter()
    plan = _plan(kind, base_url, key)
    models: list[str] = []
    last_status: int | None = None
    for url, headers in plan:
        try:
            resp = await http.get(url, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return _done(start, False, "down", None, f"timed out after {timeout:g}s calling {url}")
        except httpx.HTTPError as exc:
            return _done(
                start, False, "down", None, f"cannot reach {url}: {exc.__class__.__name__}"
            )
        last_status = resp.status_code
        if resp.status_code in (401, 403):
            return _done(
                start,
                False,
                "auth_failed",
                resp.status_code,
                f"{url} refused the API key (HTTP {resp.status_code}); check the key",
            )
        if resp.status_code >= 400:
            return _done(
                start, False, "down", resp.status_code, f"{url} answered HTTP {resp.status_code}"
            )
        try:
            models = _model_ids(kind, resp.json())
        except ValueError:
            models = []
    msg = f"reachable; {len(models)} model(s) listed" if models else "reachable"
    return _done(start, True, "healthy", last_status, msg, models)


def _done(
    start: float,
    ok: bool,
    status: str,
    http_status: int | None,
    message: str,
    models: list[str] | None = None,
) -> Probe:
    latency = round((time.perf_counter() - start) * 1000, 2)
    return Probe(ok, status, http_status, latency, message, models or [])
