"""Upstream HTTP: one shared keep-alive client, attempts with total and first-byte timeouts.

:func:`is_retryable` decides the fallback rule: connect errors, timeouts, 5xx and 429 move on
to the next candidate (only before the first byte reached the client); other 4xx answers are
the client's problem and are returned as they are.
"""

from __future__ import annotations

import random

from turnout_common.errors import (
    RateLimited,
    ServiceUnavailable,
    TurnoutError,
    UpstreamError,
    UpstreamTimeout,
)
from turnout_common.http1 import ConnectError, HttpClient, HttpClientError, Response
from turnout_router.adapters.base import Adapter, PreparedRequest

Retryable = (UpstreamError, ServiceUnavailable, UpstreamTimeout, RateLimited)


def is_retryable(err: TurnoutError) -> bool:
    return isinstance(err, Retryable)


def backoff_delay(round_no: int, base: float, retry_after: float | None, cap: float) -> float:
    """Jittered exponential backoff; an upstream's Retry-After (bounded by ``cap``) wins."""
    if retry_after is not None:
        return min(retry_after, cap)
    delay: float = min(cap, base * (2**round_no)) * (0.5 + random.random() / 2)
    return delay


class UpstreamClient:
    """The one shared HTTP client of this process (keep-alive pool, no compression).

    :mod:`turnout_common.http1` rather than aiohttp: measured in bench/RESULTS.md.
    """

    def __init__(self, *, pool_size: int, connect_timeout: float) -> None:
        self._http = HttpClient(max_connections=pool_size, connect_timeout=connect_timeout)

    async def start(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def close(self) -> None:
        await self._http.close()

    async def fetch(
        self, req: PreparedRequest, adapter: Adapter, timeout: float
    ) -> tuple[int, bytes]:
        """A whole (non-stream) response: (status, body); non-2xx raise the adapter's error."""
        req.headers["Accept-Encoding"] = "identity"
        try:
            status, headers, body = await self._http.fetch(
                req.method, req.url, req.headers, req.body, timeout
            )
        except Exception as exc:
            raise _mapped(exc, f"the upstream did not answer within {timeout:g}s") from exc
        if status >= 300:
            raise adapter.error(status, headers, body)
        return status, body

    async def open_stream(
        self, req: PreparedRequest, adapter: Adapter, ttft: float
    ) -> tuple[Response, bytes]:
        """Open a streamed response and read its first bytes within ``ttft`` seconds."""
        req.headers["Accept-Encoding"] = "identity"
        try:
            resp = await self._http.request(req.method, req.url, req.headers, req.body, ttft)
        except Exception as exc:
            raise _mapped(exc, f"no first byte from the upstream within {ttft:g}s") from exc
        try:
            if resp.status >= 300:
                body = await resp.read()
                raise adapter.error(resp.status, resp.headers, body)
            first = await resp.next_chunk()
        except BaseException as exc:
            resp.close()
            if isinstance(exc, Exception) and not isinstance(exc, TurnoutError):
                raise _mapped(exc, f"no first byte from the upstream within {ttft:g}s") from exc
            raise
        resp.clear_timeout()
        return resp, first


def _mapped(exc: Exception, timeout_message: str) -> Exception:
    """The router's error for a failed exchange (anything else is re-raised as it is)."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(timeout_message)
    if isinstance(exc, ConnectError):
        return ServiceUnavailable(f"{exc}", code="upstream_unreachable")
    if isinstance(exc, HttpClientError):
        return UpstreamError(f"the upstream connection failed: {exc}")
    return exc
