"""Upstream HTTP: one shared aiohttp session, attempts with total and first-byte timeouts.

:func:`is_retryable` decides the fallback rule: connect errors, timeouts, 5xx and 429 move on
to the next candidate (only before the first byte reached the client); other 4xx answers are
the client's problem and are returned as they are.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp

from turnout_common.errors import (
    RateLimited,
    ServiceUnavailable,
    TurnoutError,
    UpstreamError,
    UpstreamTimeout,
)
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
    """The one shared HTTP client of this process (keep-alive pool, no auto-decompress)."""

    def __init__(self, *, pool_size: int, connect_timeout: float) -> None:
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        t = round(total, 1)
        tm = self._timeouts.get(t)
        if tm is None:
            tm = self._timeouts[t] = aiohttp.ClientTimeout(
                total=t, sock_connect=self._connect_timeout
            )
            if len(self._timeouts) > 1000:
                self._timeouts.clear()
        return tm

    async def fetch(
        self, req: PreparedRequest, adapter: Adapter, timeout: float
    ) -> tuple[int, bytes]:
        """A whole (non-stream) response: (status, body); non-2xx raise the adapter's error."""
        assert self._session is not None, "start() first"
        req.headers["Accept-Encoding"] = "identity"
        try:
            async with self._session.request(
                req.method,
                req.url,
                data=req.body,
                headers=req.headers,
                timeout=self._timeout(timeout),
            ) as resp:
                body = await resp.read()
                if resp.status >= 300:
                    raise adapter.error(resp.status, resp.headers, body)
                return resp.status, body
        except TimeoutError as exc:
            raise UpstreamTimeout(f"the upstream did not answer within {timeout:g}s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ServiceUnavailable(
                f"cannot connect to the upstream: {exc.os_error}", code="upstream_unreachable"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the upstream connection failed: {type(exc).__name__}") from exc

    async def open_stream(
        self, req: PreparedRequest, adapter: Adapter, ttft: float
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Open a streamed response and read its first bytes within ``ttft`` seconds."""
        assert self._session is not None, "start() first"
        req.headers["Accept-Encoding"] = "identity"
        resp: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(ttft):
                resp = await self._session.request(
                    req.method, req.url, data=req.body, headers=req.headers
                )
                if resp.status >= 300:
                    body = await resp.read()
                    resp.release()
                    raise adapter.error(resp.status, resp.headers, body)
                first = await resp.content.readany()
                return resp, first
        except TimeoutError as exc:
            if resp is not None:
                resp.close()
            raise UpstreamTimeout(f"no first byte from the upstream within {ttft:g}s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ServiceUnavailable(
                f"cannot connect to the upstream: {exc.os_error}", code="upstream_unreachable"
            ) from exc
        except aiohttp.ClientError as exc:
            if resp is not None:
                resp.close()
            raise UpstreamError(f"the upstream connection failed: {type(exc).__name__}") from exc
