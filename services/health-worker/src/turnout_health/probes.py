"""Active probes: the right request per provider kind, and how a response is classified.

Keys are decrypted by the caller just before a probe and only ever placed in headers; no
reason string, log line or stored row contains them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import httpx

from turnout_common.events import HealthStatus
from turnout_common.provider_kinds import KINDS
from turnout_common.provider_kinds import kind as provider_kind

Verdict = Literal["success", "failure", "neutral"]
"""How a probe counts for the circuit: auth and config problems are neutral."""

SELF_HOSTED = frozenset(k.name for k in KINDS.values() if k.self_hosted)


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: HealthStatus
    verdict: Verdict
    latency_ms: float | None
    http_status: int | None
    reason: str
    queue_waiting: float | None = None
    """vLLM only: ``vllm:num_requests_waiting`` from its ``/metrics`` (None: unknown)."""
    queue_running: float | None = None
    """vLLM only: ``vllm:num_requests_running`` from its ``/metrics`` (None: unknown)."""


def default_base_url(kind: str) -> str | None:
    return provider_kind(kind).default_base_url


def probe_requests(kind: str, base_url: str | None, api_key: str | None) -> list[ProbeRequest]:
    """The GETs that check a provider of ``kind``, in order (all must succeed): the kind's row
    of :mod:`turnout_common.provider_kinds`."""
    return [ProbeRequest(u, h) for u, h in provider_kind(kind).probe_requests(base_url, api_key)]


def classify(http_status: int, latency_ms: float, slow_ms: float) -> ProbeResult:
    """Turn an HTTP answer into a health status."""
    if 200 <= http_status < 300:
        if latency_ms > slow_ms:
            reason = f"slow: {latency_ms:.0f} ms > {slow_ms:.0f} ms"
            return ProbeResult("degraded", "success", latency_ms, http_status, reason)
        return ProbeResult("healthy", "success", latency_ms, http_status, "ok")
    if http_status == 429:
        return ProbeResult("degraded", "success", latency_ms, http_status, "rate limited (429)")
    if http_status in (401, 403):
        reason = f"HTTP {http_status}: the provider rejected the configured API key"
        return ProbeResult("auth_failed", "neutral", latency_ms, http_status, reason)
    if http_status >= 500:
        return ProbeResult("down", "failure", latency_ms, http_status, f"HTTP {http_status}")
    reason = f"HTTP {http_status}: unexpected answer (check base_url and kind)"
    return ProbeResult("unknown", "neutral", latency_ms, http_status, reason)


def unknown(reason: str) -> ProbeResult:
    return ProbeResult("unknown", "neutral", None, None, reason)


async def run_probe(
    client: httpx.AsyncClient,
    requests: list[ProbeRequest],
    *,
    timeout_s: float,
    slow_ms: float,
) -> ProbeResult:
    """Send the probe requests in order; the first non-2xx decides. Latency is the total."""
    started = time.perf_counter()
    result = unknown("no probe requests")
    for req in requests:
        try:
            resp = await client.get(req.url, headers=req.headers, timeout=timeout_s)
        except httpx.TimeoutException:
            elapsed = (time.perf_counter() - started) * 1000
            return ProbeResult("down", "failure", elapsed, None, f"timeout after {timeout_s:g} s")
        except httpx.HTTPError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            reason = f"connect error: {type(exc).__name__}"
            return ProbeResult("down", "failure", elapsed, None, reason)
        elapsed = (time.perf_counter() - started) * 1000
        result = classify(resp.status_code, elapsed, slow_ms)
        if result.status not in ("healthy", "degraded") or resp.status_code == 429:
            return result
    return result


QUEUE_METRICS = ("vllm:num_requests_waiting", "vllm:num_requests_running")


def parse_vllm_queue(text: str) -> tuple[float | None, float | None]:
    """(waiting, running) from vLLM's Prometheus text: each summed over its label sets
    (one per served model); None for a series the text does not hold."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:num_requests_"):
            continue
        name, _, rest = line.partition("{")
        if not rest:
            name, _, value = line.partition(" ")
        else:
            value = rest.rpartition("}")[2]
        if name in QUEUE_METRICS:
            try:
                number = float(value.split()[0])
            except (ValueError, IndexError):
                continue
            if number >= 0:
                sums[name] = sums.get(name, 0.0) + number
    return sums.get(QUEUE_METRICS[0]), sums.get(QUEUE_METRICS[1])


async def vllm_queue(
    client: httpx.AsyncClient, base_url: str, headers: dict[str, str], timeout_s: float
) -> tuple[float | None, float | None]:
    """Scrape a vLLM server's ``/metrics`` (next to its ``/health``) for its queue; (None,
    None) if it does not answer with them (the probe's verdict does not depend on it)."""
    url = f"{provider_kind('vllm').server_root(base_url)}/metrics"
    try:
        resp = await client.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError:
        return None, None
    if resp.status_code != 200 or len(resp.content) > 4 << 20:
        return None, None
    return parse_vllm_queue(resp.text)
