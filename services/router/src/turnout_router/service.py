"""The request pipeline: auth → parse → limits → route → attempts (fallbacks) → respond → usage."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from turnout_common.errors import (
    InsufficientQuota,
    RateLimited,
    ServiceUnavailable,
    TurnoutError,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
)
from turnout_router.adapters.base import Adapter, PreparedRequest, UpstreamTarget
from turnout_router.adapters.registry import adapter_for
from turnout_router.auth import Caller
from turnout_router.budgets import Budgets
from turnout_router.context import RequestContext
from turnout_router.inputs import Inbound, parse, printable
from turnout_router.limiter import Limiter
from turnout_router.metrics import Metrics
from turnout_router.pricing import settle
from turnout_router.public_errors import public, scrub
from turnout_router.ratelimits import Limit
from turnout_router.routing import (
    NO_UPSTREAM_RETRY_S,
    Candidate,
    Need,
    no_healthy_upstream,
    plan,
)
from turnout_router.selection import explain
from turnout_router.settings import RouterSettings
from turnout_router.state import Conditions, RouterState
from turnout_router.upstream import UpstreamClient, backoff_delay, is_retryable
from turnout_router.usage import UsageEmitter

log = logging.getLogger(__name__)
T = TypeVar("T")
Call = Callable[[Adapter, PreparedRequest, Candidate, float], Awaitable[T]]
MTOK = 1_000_000
SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
"""What ``x-turnout-source`` may say (``api`` without it, ``lab`` from the testing lab)."""


class Gateway:
    """Everything a request needs, created once per process."""

    def __init__(
        self,
        settings: RouterSettings,
        state: RouterState,
        client: UpstreamClient,
        emitter: UsageEmitter,
        metrics: Metrics,
        budgets: Budgets,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.client = client
        self.emitter = emitter
        self.metrics = metrics
        self.budgets = budgets
        self.limiter = limiter or Limiter(budgets)
        self.buckets = self.limiter.buckets
        self.rng = random.Random()
        # the settings' part of the routing conditions, once; health events replace the rest
        state.conditions = replace(
            state.conditions,
            trial_share=settings.half_open_trial_share,
            price_caps=settings.price_caps(),
            latency_caps=settings.latency_caps(),
            max_attempts=settings.max_attempts,
        )
        self._targets: dict[tuple[str, int, str | None], UpstreamTarget] = {}
        self._targets_rev = -1

    # --- context ------------------------------------------------------------------------
    def _lab_quota(self, caller: Caller) -> None:
        """A testing-lab request (``x-turnout-source: lab``) of a user whose tier's monthly lab
        quota is used up (metering's count, on the credit topic): 429 ``lab_quota_exceeded``."""
        c = self.state.credits.get("user:" + caller.key.user_id)
        if c is not None and c.lab_blocked:
            quota = f"of {c.lab_quota} requests " if c.lab_quota is not None else ""
            raise InsufficientQuota(
                f"the testing lab's monthly quota {quota}on the {caller.tier!r} tier is used up;"
                " it starts again with the next UTC month (requests without"
                " x-turnout-source: lab are not affected)",
                code="lab_quota_exceeded",
            )

    def new_context(self, purpose: Any, path: str, source: str | None) -> RequestContext:
        return RequestContext(
            f"req_{self.rng.getrandbits(96):024x}",
            purpose,
            path,
            time.perf_counter(),
            time.time(),
            source or "api",
        )

    async def admit(
        self,
        ctx: RequestContext,
        caller: Caller,
        raw: bytes | Inbound,
        power_level: str | None = None,
        task_type: str | None = None,
        fallback_on_context: bool = False,
    ) -> list[Candidate]:
        """Validation, limits and routing for an authenticated ``caller``; the attempt chain
        or a 4xx/503 error."""
        bad_source = ctx.source != "api" and SOURCE.fullmatch(ctx.source) is None
        if bad_source:  # never into a usage record: metering indexes it
            ctx.source = "api"
        index = self.state.index
        ctx.caller = caller
        if bad_source:
            raise ValidationFailed(
                "x-turnout-source: 1 to 32 letters, digits, '.', '_' or '-'",
                param="x-turnout-source",
            )
        inb = raw if isinstance(raw, Inbound) else parse(ctx.purpose, raw)
        ctx.inbound = inb
        cond = self.state.conditions
        _check_headers(cond, power_level, task_type)
        ctx.power_level, ctx.task_type = power_level, task_type
        # the request is valid and can be served (context windows, capabilities) before any
        # limit is touched: a refused request takes nothing from a bucket
        need = _need(caller, inb, power_level, task_type)
        need.fallback_on_context = fallback_on_context
        chain = plan(index, need, cond, self.rng)
        if ctx.source == "lab":
            self._lab_quota(caller)
        est = inb.prompt_tokens + (inb.max_tokens or 0)
        limits = self._limits(caller)
        ctx.tokens_charged = est
        user = caller.user
        estimate: float | None = None
        out = inb.max_tokens or self.settings.default_output_tokens
        if self.state.credits or (user is not None and user.budget_usd is not None):
            d = chain[0].deployment
            estimate = float(inb.prompt_tokens * d.input_price + out * d.output_price) / MTOK
        if limits or estimate is not None:
            try:
                await self.limiter.admit(ctx, caller, limits, est, estimate)
            except InsufficientQuota as err:
                if inb.max_tokens is None:
                    err.message += (
                        f" (the estimate assumes {out} output tokens because the request sets "
                        "no max_tokens; set max_tokens to what you need)"
                    )
                raise
        return chain

    def select(
        self,
        ctx: RequestContext,
        caller: Caller,
        raw: bytes | Inbound,
        power_level: str | None = None,
        task_type: str | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/models/select``: validate and route like a request, call nothing."""
        ctx.caller = caller
        inb = raw if isinstance(raw, Inbound) else parse("chat", raw)
        cond = self.state.conditions
        _check_headers(cond, power_level, task_type)
        need = _need(caller, inb, power_level, task_type)
        return explain(self.state.index, need, cond, self.rng)

    def _limits(self, caller: Caller) -> list[Limit]:
        key = caller.key
        out: list[Limit] = []
        if key.rpm_limit or key.tpm_limit:
            out.append(Limit("key:" + key.id, key.rpm_limit, key.tpm_limit, "key"))
        tier = self.state.index.tiers.get(caller.tier)
        if tier is not None and (tier.rpm_limit or tier.tpm_limit):
            owner = f"tier {caller.tier!r}"
            out.append(Limit("user:" + key.user_id, tier.rpm_limit, tier.tpm_limit, owner))
        return out

    # --- upstream targets ---------------------------------------------------------------
    def target(self, cand: Candidate, user_id: str | None) -> UpstreamTarget | None:
        rev = self.state.config_revision
        if rev != self._targets_rev:
            self._targets.clear()
            self._targets_rev = rev
        byok_user = user_id if cand.byok else None
        ck = (cand.deployment.id, cand.provider.revision, byok_user)
        t = self._targets.get(ck)
        if t is None:
            p = cand.provider
            if byok_user is not None:
                token, trev = self.state.index.byok.get((byok_user, p.id), (None, 0))
                key = self.state.secret(f"byok:{byok_user}:{p.id}", trev, token)
            else:
                key = self.state.secret(f"provider:{p.id}", p.revision, p.api_key_encrypted)
            if key is None and (p.api_key_encrypted or byok_user):
                return None
            t = UpstreamTarget(p.kind, p.base_url, cand.deployment.upstream_model, key)
            self._targets[ck] = t
        return t

    def _provider_limited(self, p: Any, tokens: int) -> bool:
        now = time.monotonic()
        if self.buckets.take("prov:" + p.id + ":rpm", p.rpm_limit, 1.0, now):
            return True
        if self.buckets.take("prov:" + p.id + ":tpm", p.tpm_limit, float(tokens), now):
            self.buckets.adjust("prov:" + p.id + ":rpm", p.rpm_limit, -1.0)
            return True
        return False

    async def attempts(self, ctx: RequestContext, chain: list[Candidate], call: Call[T]) -> T:
        """Try the chain (then retry rounds with backoff) until one attempt succeeds."""
        if ctx.trace is not None:
            call = ctx.trace.wrap(ctx, call)  # a CLIENT span per attempt
        s = self.settings
        inb = ctx.inbound
        assert inb is not None
        deadline = ctx.t0 + s.request_timeout_s
        user_id = ctx.caller.key.user_id if ctx.caller else None
        last: TurnoutError | None = None
        tried = 0
        load = self.state.conditions.load
        for round_no in range(s.retry_rounds + 1):
            retry_after: float | None = None
            for cand in chain:
                if tried >= s.max_attempts:
                    break
                p = cand.provider
                now = time.perf_counter()
                if now >= deadline:
                    raise UpstreamTimeout(f"no upstream answered within {s.request_timeout_s:g}s")
                if (p.rpm_limit or p.tpm_limit) and self._provider_limited(p, ctx.tokens_charged):
                    ctx.attempt(cand, 429, "provider_rate_limited", 0.0)
                    last = RateLimited(f"provider {p.name!r} is at its rate limit", retry_after=1)
                    continue
                adapter = adapter_for(p.kind)
                if ctx.door is not None and adapter is not None:
                    adapter = ctx.door.adapter(p.kind, adapter)  # /v1/messages, /v1/responses
                target = self.target(cand, user_id)
                if adapter is None or target is None or not adapter.supports(ctx.purpose):
                    why = "no_adapter" if target is not None else "provider_key_unavailable"
                    ctx.attempt(cand, None, why, 0.0)
                    last = ServiceUnavailable(f"provider {p.name!r} cannot be called ({why})")
                    continue
                timeout = min(p.timeout_s or s.request_timeout_s, deadline - now)
                tried += 1
                load.started(p.id)  # until finish() for the one that serves
                try:
                    result = await _call(call, adapter, ctx, target, cand, timeout)
                except TurnoutError as detail:
                    load.ended(p.id)
                    ms = (time.perf_counter() - now) * 1000
                    ctx.attempt(cand, detail.status, detail.code, ms)
                    self.metrics.failed_attempt(p.name, detail.code or "")
                    log.warning(
                        "request %s: attempt on provider %r failed: %s",
                        ctx.request_id, p.name, scrub(detail.message, target.api_key),
                    )  # fmt: skip
                    err = public(detail, p.name)
                    if not is_retryable(err):
                        raise err from None
                    last = err
                    ctx.fallbacks += 1
                    if isinstance(err, RateLimited) and err.retry_after is not None:
                        retry_after = max(retry_after or 0.0, err.retry_after)
                    continue
                except BaseException:  # cancelled (the client went away)
                    load.ended(p.id)
                    raise
                ctx.attempt(cand, 200, None, (time.perf_counter() - now) * 1000)
                ctx.served = cand
                return result
            if round_no >= s.retry_rounds or tried >= s.max_attempts or last is None:
                break
            delay = backoff_delay(round_no, s.retry_backoff_s, retry_after, s.retry_after_max_s)
            if time.perf_counter() + delay >= deadline:
                break
            await asyncio.sleep(delay)
        raise _exhausted(last, len(ctx.attempts))

    # --- completion ---------------------------------------------------------------------
    def finish(self, ctx: RequestContext, end: float | None = None) -> None:
        """Settle token buckets and the budget reservation, and emit the usage record.

        ``end`` is when the answer went out (``perf_counter``); default: now.
        """
        served = ctx.served
        if served is not None:
            load = self.state.conditions.load
            load.ended(served.provider.id)
            ttft = ctx.ttft_ms if ctx.ttft_ms is not None else ctx.attempts[-1]["latency_ms"]
            load.observe_ttft(served.deployment.id, ttft)
        provider_tpm = served.provider.tpm_limit if served is not None else None
        if ctx.limits or provider_tpm:
            # every bucket settles to the real tokens (nothing when nothing was served)
            inp, out, _, _ = ctx.tokens() if served is not None else (0, 0, 0, False)
            delta = inp + out - ctx.tokens_charged
            if delta:
                self.limiter.settle_tokens(ctx, delta)
                if served is not None and provider_tpm:
                    self.buckets.adjust("prov:" + served.provider.id + ":tpm", provider_tpm, delta)
        record = ctx.record(time.perf_counter() if end is None else end)
        settle(self.limiter, record, ctx.billed_nano(), ctx.reservation)
        trace = ctx.trace.finish(ctx, record) if ctx.trace is not None else None
        self.metrics.observe_usage(record)
        self.emitter.emit(record, trace)


def _check_headers(cond: Conditions, power_level: str | None, task_type: str | None) -> None:
    """422 naming the header for an unknown ``x-power-level`` or a bad ``x-task-type``."""
    if power_level is not None and power_level not in cond.price_caps:
        raise ValidationFailed(
            "x-power-level: use one of eco, balanced, precision", param="x-power-level"
        )
    if task_type is not None:
        if not 0 < len(task_type) <= 64:
            raise ValidationFailed("x-task-type: 1 to 64 characters", param="x-task-type")
        printable(task_type, "x-task-type", "a task type")


async def _call(
    call: Call[T],
    adapter: Adapter,
    ctx: RequestContext,
    target: UpstreamTarget,
    cand: Candidate,
    timeout: float,
) -> T:
    """One attempt. Any error building or sending the upstream request (a stored key that
    cannot be a header, say) is a failed attempt that falls back, never a 500."""
    inb = ctx.inbound
    assert inb is not None
    try:
        req = adapter.prepare(ctx.purpose, inb.body, target, stream=inb.stream)
        return await call(adapter, req, cand, timeout)
    except TurnoutError:
        raise
    except Exception as exc:
        raise ServiceUnavailable(
            f"building or sending the upstream request failed: {type(exc).__name__}: {exc}",
            code="upstream_request_failed",
        ) from exc


def _need(caller: Caller, inb: Inbound, power_level: str | None, task_type: str | None) -> Need:
    return Need(
        purpose=inb.purpose,
        model=inb.model,
        tier=caller.tier,
        tier_rank=caller.tier_rank,
        prompt_tokens=inb.prompt_tokens,
        max_tokens=inb.max_tokens or 0,
        tools=inb.tools,
        vision=inb.vision,
        json_mode=inb.json_mode,
        stream=inb.stream,
        power_level=power_level,
        task_type=task_type,
        allowed=caller.key.allowed_models,
        byok_providers=caller.byok_providers,
    )


def _exhausted(last: TurnoutError | None, n: int) -> TurnoutError:
    if last is None:
        return no_healthy_upstream("no upstream could be tried")
    msg = f"all {n} upstream attempts failed; last: {last.message}"
    if isinstance(last, RateLimited):
        return RateLimited(msg, retry_after=last.retry_after, code="upstream_rate_limited")
    if isinstance(last, UpstreamTimeout):
        return UpstreamTimeout(msg)
    if isinstance(last, ServiceUnavailable):
        retry = {"retry-after": str(NO_UPSTREAM_RETRY_S), **last.headers}
        return ServiceUnavailable(msg, code=last.code, headers=retry)
    return UpstreamError(msg, code=last.code if isinstance(last, UpstreamError) else None)
