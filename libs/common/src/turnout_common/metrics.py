"""Prometheus series every service shares (default registry, served at ``/metrics``).

Defined once here, labelled by ``service``, so that several services in one process (tests)
never register a name twice. Names are those ``deploy/grafana/turnout.json`` queries and
``deploy/README.md`` lists; the router renders the same HTTP names itself.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "turnout_http_requests",
    "HTTP requests by service, method, route template and status",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "turnout_http_request_duration_seconds",
    "HTTP request duration by service, method and route template",
    ["service", "method", "route"],
    buckets=HTTP_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "turnout_consumer_lag",
    "Records a consumer group has not consumed yet, per topic partition",
    ["service", "topic", "partition"],
)
SKIPPED_RECORDS = Counter(
    "turnout_consumer_skipped_records",
    "Records a follower could not apply: logged, counted and skipped (never retried forever)",
    ["consumer", "topic"],
)
OUTBOX_PENDING = Gauge(
    "turnout_outbox_pending",
    "Committed outbox rows the broker has not acknowledged yet",
    ["service"],
)

OUTBOX_STUCK = Gauge(
    "turnout_outbox_stuck",
    "1 while the oldest outbox row has failed to send for a minute (nothing behind it goes out)",
    ["service"],
)

UNMATCHED = "unmatched"
"""The ``route`` label of requests no route matched (keeps the label set bounded)."""


def route_template(scope: Scope) -> str | None:
    """The matched route's whole template (``/api/v1/providers/{ref}``), None if none matched.

    FastAPI (0.165) leaves the routes of an included router relative to its prefix in
    ``scope["route"]`` (``/providers/{ref}``) and the resolved whole one in its own scope
    entry, so that one is preferred; Starlette's routes carry theirs whole.
    """
    fastapi = scope.get("fastapi")
    if isinstance(fastapi, dict):
        path = getattr(fastapi.get("effective_route_context"), "path_format", None)
        if isinstance(path, str) and path:
            return path
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


class StatusSeen:
    """An ASGI ``send`` that passes every message on and keeps the response's status code
    (``status`` until the response starts)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send, status: int) -> None:
        self.send = send
        self.status = status

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self.send(message)


class HttpMetricsMiddleware:
    """ASGI middleware counting requests by route *template* (``/api/v1/providers/{ref}``).

    Install it inside any middleware that copies the scope, or the template is not seen.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    @staticmethod
    def _route(scope: Scope) -> str:
        """The matched route's template, which routing leaves in the (shared) scope."""
        return route_template(scope) or UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent = StatusSeen(send, 500)
        try:
            await self.app(scope, receive, sent)
        finally:
            route, method = self._route(scope), scope["method"]
            HTTP_REQUESTS.labels(self.service, method, route, str(sent.status)).inc()
            HTTP_DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)
