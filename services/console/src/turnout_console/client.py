"""Calls to the other services' public HTTP APIs, always with the signed-in person's credential."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from turnout_console.settings import ConsoleSettings

Service = Literal["config", "metering", "health", "router"]


@dataclass(frozen=True, slots=True)
class ApiResult:
    status: int
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def rows(self) -> list[Any]:
        """A list answer's ``data`` ([] when the call failed or answered something else)."""
        if self.ok and isinstance(self.data, dict):
            return list(self.data.get("data", []))
        return []

    @property
    def message(self) -> str:
        """The service's error message (OpenAI error shape), or a plain status line."""
        if isinstance(self.data, dict):
            err = self.data.get("error")
            if isinstance(err, dict) and err.get("message"):
                return str(err["message"])
        if self.status == 0:
            return str(self.data)
        return f"HTTP {self.status}"


class ApiClient:
    """One aiohttp session for the console's life; base URLs come from the settings."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.bases: dict[Service, str] = {
            "config": settings.config_url.rstrip("/"),
            "metering": settings.metering_url.rstrip("/"),
            "health": settings.health_url.rstrip("/"),
            "router": settings.router_url.rstrip("/"),
        }
        self.timeout = aiohttp.ClientTimeout(total=settings.console_api_timeout_s)
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=self.timeout)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        credential: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> ApiResult:
        assert self._http is not None, "ApiClient.start() first"
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        headers = {"Authorization": f"Bearer {credential}"}
        try:
            async with self._http.request(
                method, self.bases[service] + path, params=clean, json=json, headers=headers
            ) as resp:
                if resp.content_type == "application/json":
                    return ApiResult(resp.status, await resp.json())
                return ApiResult(resp.status, await resp.text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            # never the URL or the credential: the kind of failure and the service only
            return ApiResult(0, f"the {service} service did not answer ({type(exc).__name__})")

    @asynccontextmanager
    async def open_stream(
        self,
        service: Service,
        path: str,
        credential: str,
        *,
        json: Any,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A POST whose answer is read as it arrives (the lab's SSE); the caller reads
        ``resp.content`` line by line. Connection errors propagate as aiohttp errors."""
        assert self._http is not None, "ApiClient.start() first"
        sent = {"Authorization": f"Bearer {credential}", **(headers or {})}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self.timeout.total)
        async with self._http.post(
            self.bases[service] + path, json=json, headers=sent, timeout=timeout
        ) as resp:
            yield resp
