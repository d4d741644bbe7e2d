"""The RSGI application (Granian): a small dispatcher, no web framework on the hot path."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from turnout_common.broker import ensure_topics
from turnout_common.crypto import KeyRing
from turnout_common.errors import NotFound, ServiceUnavailable, TurnoutError
from turnout_common.topics import CONFIG, CREDIT, HEALTH, USAGE
from turnout_router.adapters.base import Purpose
from turnout_router.auth import authenticate
from turnout_router.budgets import Budgets
from turnout_router.consumers import Followers
from turnout_router.context import RequestContext
from turnout_router.ingress.count_tokens import count_tokens
from turnout_router.ingress.door import Ingress
from turnout_router.ingress.messages_door import MESSAGES
from turnout_router.ingress.responses_door import RESPONSES
from turnout_router.inputs import read_body
from turnout_router.journal import InflightJournal
from turnout_router.limiter import Limiter
from turnout_router.metrics import Metrics
from turnout_router.models import get_model, list_models
from turnout_router.request_log import log_request
from turnout_router.service import Gateway
from turnout_router.settings import RouterSettings
from turnout_router.shared import shared_store
from turnout_router.state import RouterState
from turnout_router.streaming import stream, unary
from turnout_router.upstream import UpstreamClient
from turnout_router.usage import UsageEmitter

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from turnout_router.tracing import RouterTracing

log = logging.getLogger(__name__)

POST_ROUTES: dict[str, Purpose] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
    "/v1/embeddings": "embeddings",
    "/v1/rerank": "reranking",
}
APIS = {
    "/v1/chat/completions": "chat.completions",
    "/v1/completions": "completions",
    "/v1/rerank": "rerank",  # the purpose is "reranking": not a value UsageEvent.api takes
}
INGRESS: dict[str, Ingress] = {"/v1/messages": MESSAGES, "/v1/responses": RESPONSES}
"""Other client APIs, served as chat requests (turnout_router.ingress)."""
JSON = [("content-type", "application/json")]


class RouterApp:
    """``__rsgi__`` serves requests; ``__rsgi_init__`` starts followers, client and emitter."""

    def __init__(
        self,
        settings: RouterSettings | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """``tracer_provider`` turns tracing on (else the ``OTEL_*`` environment may)."""
        self.settings = s = settings or RouterSettings()
        keys = s.encryption_key_list()
        self.state = RouterState(KeyRing(keys) if keys else None)
        self.metrics = Metrics()
        self.budgets = Budgets(self.state)
        self.limiter = Limiter(self.budgets, shared_store(s))
        self.client = UpstreamClient(
            pool_size=s.upstream_pool_size, connect_timeout=s.connect_timeout_s
        )
        self.emitter = UsageEmitter(
            s.kafka,
            s.usage_topic,
            s.spool_dir,
            flush_interval_s=s.usage_flush_interval_ms / 1000,
            batch_max=s.usage_batch_max,
            send_timeout_s=s.usage_send_timeout_s,
            replay_interval_s=s.usage_replay_interval_s,
            resend_window_s=s.usage_resend_window_s,
            resend_max_bytes=int(s.usage_resend_max_mb * (1 << 20)),
        )
        self.tracing: RouterTracing | None = None  # None: no span work on the request path
        if tracer_provider is not None or s.tracing_requested():
            from turnout_router.tracing import RouterTracing

            self.tracing = RouterTracing.create(s, tracer_provider)
        self.followers = Followers(s, self.state, tracing=self.tracing)
        self.gateway = Gateway(
            s, self.state, self.client, self.emitter, self.metrics, self.budgets, self.limiter
        )
        self.journal = InflightJournal(s.spool_dir) if s.inflight_journal else None
        self.request_log = s.request_log
        self.started = False
        self.max_body = int(s.max_body_mb * (1 << 20))
        self._startup: asyncio.Task[None] | None = None
        self.metrics.gauges["turnout_router_usage_pending"] = lambda: self.emitter.pending
        self.metrics.gauges["turnout_router_usage_spooled_total"] = lambda: self.emitter.spooled
        self.metrics.gauges["turnout_router_config_revision"] = lambda: self.state.config_revision
        if (store := self.limiter.shared) is not None:
            self.metrics.gauges["turnout_router_shared_limits_up"] = lambda: float(store.up)
            self.metrics.counters["turnout_router_shared_limits_fallback_total"] = lambda: (
                store.fallbacks
            )

    # --- lifecycle ----------------------------------------------------------------------
    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._startup = loop.create_task(self.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.is_running():
            loop.create_task(self.shutdown())
        else:
            loop.run_until_complete(self.shutdown())

    async def startup(self) -> None:
        t0 = time.perf_counter()
        await self.client.start()
        try:
            await ensure_topics(self.settings.kafka, (CONFIG, HEALTH, CREDIT, USAGE))
        except Exception as exc:
            log.warning("could not ensure topics (%s); continuing", exc)
        t1 = time.perf_counter()
        await self.emitter.start()
        if self.journal is not None:
            for record in self.journal.recover():  # requests a crashed router was serving
                self.emitter.emit(record)
            self.journal.open()
        await self.followers.start()
        if self.limiter.shared is not None:
            await self.limiter.shared.start()
        log.debug("topics %.3fs, followers %.3fs", t1 - t0, time.perf_counter() - t1)
        self.started = True
        # long-lived startup objects leave the collector's view: cheaper full collections
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 100)  # most request garbage dies young; fewer passes
        log.info(
            "router ready in %.2fs (config revision %s)",
            time.perf_counter() - t0,
            self.state.config_revision,
        )

    async def shutdown(self) -> None:
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
        await asyncio.sleep(0)  # pending settle() callbacks run before the emitter stops
        await self.followers.stop()
        await self.emitter.stop()
        if self.limiter.shared is not None:
            await self.limiter.shared.close()
        if self.journal is not None:
            self.journal.close()
        await self.client.close()
        if self.tracing is not None:
            self.tracing.shutdown()

    @property
    def ready(self) -> bool:
        return self.started and self.state.config_loaded and self.followers.running

    # --- dispatch -----------------------------------------------------------------------
    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        path = scope.path
        if scope.method == "POST":
            purpose = POST_ROUTES.get(path)
            if purpose is not None:
                await self.handle(purpose, scope, proto)
                return
            door = INGRESS.get(path)
            if door is not None:
                await self.handle("chat", scope, proto, door)
                return
            if path == "/v1/messages/count_tokens":
                await self.count_tokens(scope, proto)
                return
            if path == "/v1/models/select":
                await self.select(scope, proto)
                return
        elif scope.method == "GET":
            if path == "/v1/models" or path.startswith("/v1/models/"):
                self.models(scope, proto, path[len("/v1/models/") :] or None)
                return
            if path == "/healthz":
                proto.response_bytes(200, JSON, b'{"status":"ok"}')
                return
            if path == "/readyz":
                ok = self.ready
                body = {
                    "status": "ready" if ok else "not_ready",
                    "checks": {
                        "config": self.state.config_loaded,
                        "consumers": self.followers.running,
                    },
                    "config_revision": self.state.config_revision,
                }
                proto.response_bytes(200 if ok else 503, JSON, orjson.dumps(body))
                return
            if path == "/metrics":
                proto.response_bytes(
                    200, [("content-type", "text/plain; version=0.0.4")], self.metrics.render()
                )
                return
        err = NotFound(f"no route for {scope.method} {path}", code="unknown_url")
        proto.response_bytes(404, JSON, orjson.dumps(err.to_dict()))

    async def handle(
        self, purpose: Purpose, scope: Any, proto: Any, ingress: Ingress | None = None
    ) -> None:
        gw = self.gateway
        h = scope.headers
        ctx = gw.new_context(purpose, scope.path, h.get("x-turnout-source"))
        ctx.api = ingress.api if ingress is not None else APIS.get(scope.path, purpose)
        if self.tracing is not None:
            self.tracing.begin(ctx, h)
        try:
            if not self.started:
                raise ServiceUnavailable("the router is starting; retry in a moment")
            # who is asking, before a byte of the body is read
            auth = h.get("authorization") if ingress is None else ingress.authorization(h)
            caller = authenticate(self.state.index, auth, ctx.started_at)
            raw = await read_body(proto, h.get("content-length"), self.max_body)
            if ingress is not None:
                ctx.door = ingress.open(raw, h)  # the client's API → a chat request
            chain = await gw.admit(
                ctx,
                caller,
                raw if ctx.door is None else ctx.door.inbound,
                h.get("x-power-level"),
                h.get("x-task-type"),
                fallback_on_context=h.get("x-turnout-fallback-on-context") == "true",
            )
            if ctx.door is not None:  # what chat cannot say goes only to native providers
                chain = ctx.door.narrow(chain)
            assert ctx.inbound is not None
            if self.journal is not None:
                self.journal.started(ctx.request_id, ctx.crash_record(chain[0]))
            if ctx.inbound.stream:
                await stream(gw, ctx, chain, proto)
            else:
                await unary(gw, ctx, chain, proto)
        except TurnoutError as err:
            self.reject(ctx, err, proto, ingress)
        except Exception:
            log.exception("request %s failed", ctx.request_id)
            self.reject(ctx, TurnoutError("internal error; see the router log"), proto, ingress)
        finally:
            # Accounting (usage record, buckets, metrics) runs after the answers that are
            # already waiting in the loop: under a burst of upstream answers each client
            # then waits for the others' responses only, not for their bookkeeping too.
            asyncio.get_running_loop().call_soon(self.settle, ctx, time.perf_counter())

    def settle(self, ctx: RequestContext, end: float) -> None:
        if self.journal is not None:
            self.journal.ended(ctx.request_id)
        self.gateway.finish(ctx, end)
        self.metrics.observe(ctx.path, ctx.status, end - ctx.t0)
        if self.request_log:
            log_request(ctx, end - ctx.t0)

    @staticmethod
    def reject(
        ctx: RequestContext, err: TurnoutError, proto: Any, ingress: Ingress | None = None
    ) -> None:
        ctx.status, ctx.error_code = err.status, err.code
        if err.status >= 500 and type(err) is TurnoutError:
            ctx.outcome = "error"
        else:
            ctx.outcome = "upstream_error" if ctx.attempts else "rejected"
        headers = ctx.headers()
        headers.extend(err.headers.items())
        body = orjson.dumps(err.to_dict()) if ingress is None else ingress.error(err)
        proto.response_bytes(err.status, headers, body)

    async def select(self, scope: Any, proto: Any) -> None:
        """Dry run: which model would serve this body and why; nothing called or billed."""
        h = scope.headers
        try:
            caller = authenticate(self.state.index, h.get("authorization"), time.time())
            raw = await read_body(proto, h.get("content-length"), self.max_body)
            ctx = self.gateway.new_context("chat", scope.path, None)
            body = self.gateway.select(
                ctx, caller, raw, h.get("x-power-level"), h.get("x-task-type")
            )
            proto.response_bytes(200, JSON, orjson.dumps(body))
        except TurnoutError as err:
            proto.response_bytes(
                err.status, JSON + list(err.headers.items()), orjson.dumps(err.to_dict())
            )

    async def count_tokens(self, scope: Any, proto: Any) -> None:
        """``POST /v1/messages/count_tokens``: validated and routed like a request (unknown
        model 404, a model the key may not use 403); the upstream's count or an estimate."""
        h = scope.headers
        try:
            caller = authenticate(self.state.index, MESSAGES.authorization(h), time.time())
            raw = await read_body(proto, h.get("content-length"), self.max_body)
            body, how = await count_tokens(self.gateway, caller, raw, h)
            proto.response_bytes(200, [*JSON, ("x-turnout-token-count", how)], body)
        except TurnoutError as err:
            proto.response_bytes(err.status, JSON + list(err.headers.items()), MESSAGES.error(err))

    def models(self, scope: Any, proto: Any, name: str | None = None) -> None:
        try:
            index = self.state.index
            caller = authenticate(index, scope.headers.get("authorization"), time.time())
            if name is None:
                body = list_models(index, caller)
            else:
                body = get_model(index, caller, unquote(name))
            proto.response_bytes(200, JSON, orjson.dumps(body))
        except TurnoutError as err:
            proto.response_bytes(
                err.status, JSON + list(err.headers.items()), orjson.dumps(err.to_dict())
            )


def create_app(
    settings: RouterSettings | None = None, *, tracer_provider: TracerProvider | None = None
) -> RouterApp:
    """The app factory Granian calls (``turnout_router.app:create_app``, factory mode)."""
    from turnout_common.logs import setup_logging

    settings = settings or RouterSettings()
    setup_logging(settings.log_level, json=settings.log_json, service="router")
    return RouterApp(settings, tracer_provider=tracer_provider)
