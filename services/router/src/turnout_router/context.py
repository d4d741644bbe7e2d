"""Per-request context and the usage record built from it (one per request, always)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from turnout_router.adapters.base import Purpose, UsageCounts
from turnout_router.auth import Caller
from turnout_router.billing import billed_nano
from turnout_router.budgets import Budgets, Reservation
from turnout_router.inputs import Inbound
from turnout_router.pricing import cost_of, nano_str
from turnout_router.ratelimits import Limit
from turnout_router.record import Attempt, UsageRecord
from turnout_router.routing import Candidate

if TYPE_CHECKING:
    from turnout_router.ingress.door import Door
    from turnout_router.tracing import RequestTrace


@dataclass(slots=True)
class RequestContext:
    request_id: str
    purpose: Purpose
    path: str
    t0: float
    started_at: float
    source: str = "api"
    caller: Caller | None = None
    inbound: Inbound | None = None
    attempts: list[Attempt] = field(default_factory=list)
    served: Candidate | None = None
    last: Candidate | None = None
    fallbacks: int = 0
    status: int = 200
    outcome: str = "success"
    error_code: str | None = None
    usage: UsageCounts | None = None
    output_chars: int = 0
    ttft_ms: float | None = None
    reservation: Reservation | None = None
    tokens_charged: int = 0
    power_level: str | None = None
    task_type: str | None = None
    limits: tuple[Limit, ...] = ()  # the caller's rate limits, looked up once per request
    limits_shared: bool = False  # taken in the shared store (turnout_router.shared)
    rate_headers: list[tuple[str, str]] | None = None  # x-ratelimit-*, when limits apply
    trace: RequestTrace | None = None  # set only while tracing is on (turnout_router.tracing)
    api: str = "chat.completions"  # the client API: chat.completions, messages, responses …
    door: Door | None = None  # set for /v1/messages and /v1/responses (turnout_router.ingress)
    # (tokens, cost USD, cost nano-USD, billed nano-USD, billed USD): priced and billed once
    _cost: tuple[tuple[int, int, int], str, int, int, str] | None = None

    def headers(self, content_type: str = "application/json") -> list[tuple[str, str]]:
        h = [
            ("content-type", content_type),
            ("x-request-id", self.request_id),
            ("x-turnout-fallbacks", str(self.fallbacks)),
        ]
        cand = self.served or self.last
        if cand is not None:
            h.append(("x-turnout-provider", cand.provider.name))
            h.append(("x-turnout-model", cand.deployment.name))
            h.append(("x-turnout-route", cand.via))
            if cand.deployment.deprecated:
                h.append(("x-turnout-deprecated", "true"))
        if self.rate_headers is not None:
            h.extend(self.rate_headers)
        return h

    def attempt(self, cand: Candidate, status: int | None, error: str | None, ms: float) -> None:
        self.last = cand
        d, p = cand.deployment, cand.provider
        self.attempts.append(
            {
                "provider_id": p.id,
                "provider": p.name,
                "model": d.name,
                "upstream_model": d.upstream_model,
                "deployment_id": d.id,
                "status": status,
                "error": error,
                "latency_ms": round(ms, 3),
            }
        )

    def tokens(self) -> tuple[int, int, int, bool]:
        """(input, output, cached, estimated): the upstream's counts, else chars/4."""
        u = self.usage
        if u is not None and u.present:
            return u.input_tokens, u.output_tokens, u.cached_tokens, False
        if self.served is None or self.inbound is None:
            return 0, 0, 0, False
        out = (self.output_chars + 3) // 4 if self.output_chars else 0
        return self.inbound.prompt_tokens, out, 0, True

    def _priced(self) -> tuple[tuple[int, int, int], str, int, int, str] | None:
        """(tokens, cost USD, cost nano-USD, billed nano-USD, billed USD), computed once per
        token count (the cost header, the credits header, the stream's last chunk, the log
        line, the record and the budget settlement share it); None if nothing was served."""
        cand = self.served
        if cand is None:
            return None
        inp, out, cached, _ = self.tokens()
        known = self._cost
        if known is None or known[0] != (inp, out, cached):
            usd, nano = cost_of(cand.deployment, inp, out, cached)
            known = ((inp, out, cached), usd, nano, *self._bill(cand, usd, nano))
            self._cost = known
        return known

    def cost(self) -> str | None:
        """What this request costs, as metering will record it (USD, 9 decimals)."""
        known = self._priced()
        return None if known is None else known[1]

    def billed_nano(self) -> int:
        """What this request bills its caller, in nano-USD (the BYOK billing policy:
        :mod:`turnout_router.billing`)."""
        known = self._priced()
        return 0 if known is None else known[3]

    def _bill(self, cand: Candidate, usd: str, nano: int) -> tuple[int, str]:
        """(nano-USD, USD) that a request costing ``usd`` / ``nano`` bills its caller: the
        cost itself, or for a BYOK-served request the tier's fee of it."""
        if not cand.byok:
            return nano, usd
        fee = self.caller.byok_fee if self.caller is not None else 0
        billed = billed_nano(nano, True, fee)
        return billed, nano_str(billed)

    def money_headers(self, budgets: Budgets) -> list[tuple[str, str]]:
        """``x-turnout-cost-usd`` (exactly what metering records) and, for a caller with a
        budget or prepaid credit, ``x-turnout-credits-remaining-usd``."""
        cost = self.cost()
        if cost is None:
            return []
        out = [("x-turnout-cost-usd", cost)]
        left = self.credits_remaining(budgets)
        if left is not None:
            out.append(("x-turnout-credits-remaining-usd", left))
        return out

    def credits_remaining(self, budgets: Budgets) -> str | None:
        if self.caller is None:
            return None
        billed = self.billed_nano() / 1e9
        left = budgets.remaining_after(self.caller.key.user_id, self.caller.key.id, billed)
        return None if left is None else f"{left:.9f}"

    def crash_record(self, cand: Candidate) -> UsageRecord:
        """The record to emit if this router dies before the answer (the in-flight journal):
        the first candidate, the input-token estimate (priced), no output, marked estimated."""
        inp = self.inbound.prompt_tokens if self.inbound else 0
        usd, nano = cost_of(cand.deployment, inp, 0, 0)
        rec = self._record(cand, self.t0, inp, 0, 0, True, usd, self._bill(cand, usd, nano)[1])
        rec.status, rec.outcome, rec.error_code = 502, "router_crash", "router_crash"
        return rec

    def record(self, now: float) -> UsageRecord:
        """The request's usage record, priced (see :meth:`_priced`)."""
        inp, out, cached, estimated = self.tokens()
        known = self._priced()
        if known is None:
            return self._record(None, now, inp, out, cached, estimated, "0", "0.000000000")
        return self._record(self.served, now, inp, out, cached, estimated, known[1], known[4])

    def _record(
        self,
        cand: Candidate | None,
        now: float,
        inp: int,
        out: int,
        cached: int,
        estimated: bool,
        cost: str,
        billed: str,
    ) -> UsageRecord:
        caller, inbound = self.caller, self.inbound
        d = cand.deployment if cand is not None else None
        p = cand.provider if cand is not None else None
        # positional, in the order of UsageRecord's fields (the request path: ~2x cheaper
        # than keywords; bench/record_cost.py)
        return UsageRecord(
            self.request_id,
            self.purpose,
            self.started_at,
            self.api,
            caller.key.user_id if caller is not None else None,
            caller.key.id if caller is not None else None,
            inbound.model if inbound is not None else None,
            d.name if d is not None else None,
            d.upstream_model if d is not None else None,
            p.id if p is not None else None,
            p.name if p is not None else None,
            d.id if d is not None else None,
            cand.byok if cand is not None else False,
            cand.via if cand is not None else None,
            self.power_level,
            self.task_type,
            inp,
            out,
            cached,
            estimated,
            cost,
            billed,
            round((now - self.t0) * 1000, 3),
            self.ttft_ms,
            self.status,
            self.outcome,
            self.error_code,
            bool(inbound and inbound.stream),
            self.fallbacks,
            self.attempts,
            self.source,
        )
