"""Live provider checks, the right probe per kind (httpx; low volume, so its pool is fine)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from turnout_common.provider_kinds import kind as provider_kind


@dataclass
class Probe:
    ok: bool
    status: str
    http_status: int | None
    latency_ms: float
    message: str
    models: list[str] = field(default_factory=list)


async def probe(
    http: httpx.AsyncClient, kind: str, base_url: str, key: str | None, timeout: float
) -> Probe:
    """Run the kind's checks; never raises for upstream trouble (it is the answer)."""
    start = time.perf_counter()
    spec = provider_kind(kind)
    plan = spec.probe_requests(base_url, key)
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
            models = spec.model_ids(resp.json())
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
