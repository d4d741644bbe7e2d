"""Per-request context and the usage record built from it (one per request, always)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from turnout_router.adapters.base import Purpose, UsageCounts
from turnout_router.auth import Caller
from turnout_router.billing import billed_nano, nano_of
from turnout_router.budgets import Budgets, Reservation
from turnout_router.inputs import Inbound
from turnout_router.ratelimits import Limit
from turnout_router.routing import Candidate
from turnout_router.usage import nano_str, price, price_nano

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
    attempts: list[dict[str, Any]] = field(default_factory=list)
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

    def cost(self) -> str | None:
        """What this request costs, as metering will record it (USD, 9 decimals)."""
        cand = self.served
        if cand is None:
            return None
        inp, out, cached, _ = self.tokens()
        d = cand.deployment
        if d.int_prices is not None:
            return nano_str(price_nano(inp, out, cached, d.int_prices))
        return format(price(inp, out, cached, (d.input_price, d.output_price, d.cached_price)), "f")

    def billed(self, cost: str) -> str:
        """What a request of ``cost`` bills this caller (the BYOK billing policy)."""
        cand, caller = self.served, self.caller
        byok = cand is not None and cand.byok
        fee = caller.byok_fee if caller is not None else 0
        return nano_str(billed_nano(nano_of(cost), byok, fee))

    def money_headers(self, budgets: Budgets) -> list[tuple[str, str]]:
        """``x-turnout-cost-usd`` (exactly what metering records) and, for a caller with a
        budget or prepaid credit, ``x-turnout-credits-remaining-usd``."""
        cost = self.cost()
        if cost is None:
            return []
        out = [("x-turnout-cost-usd", cost)]
        left = self.credits_remaining(budgets, cost)
        if left is not None:
            out.append(("x-turnout-credits-remaining-usd", left))
        return out

    def credits_remaining(self, budgets: Budgets, cost: str) -> str | None:
        if self.caller is None:
            return None
        billed = nano_of(self.billed(cost)) / 1e9
        left = budgets.remaining_after(self.caller.key.user_id, self.caller.key.id, billed)
        return None if left is None else f"{left:.9f}"

    def crash_record(self, cand: Candidate) -> dict[str, Any]:
        """The record to emit if this router dies before the answer (the in-flight journal):
        the first candidate, the input-token estimate, no output, marked estimated."""
        rec = self.record(self.t0)
        d, p = cand.deployment, cand.provider
        rec.update(
            model=d.name, upstream_model=d.upstream_model, provider_id=p.id, provider=p.name,
            deployment_id=d.id, byok=cand.byok, route=cand.via, status=502,
            outcome="router_crash", error_code="router_crash", estimated=True,
            input_tokens=self.inbound.prompt_tokens if self.inbound else 0, output_tokens=0,
        )  # fmt: skip
        if d.int_prices is not None:
            rec["_micro"] = d.int_prices
        else:
            rec["_prices"] = [str(d.input_price), str(d.output_price), str(d.cached_price)]
        return rec

    def record(self, now: float) -> dict[str, Any]:
        inp, out, cached, estimated = self.tokens()
        rec: dict[str, Any] = {
            "request_id": self.request_id,
            "user_id": None,
            "key_id": None,
            "purpose": self.purpose,
            "api": self.api,
            "requested_model": self.inbound.model if self.inbound else None,
            "model": None,
            "upstream_model": None,
            "provider_id": None,
            "provider": None,
            "deployment_id": None,
            "byok": False,
            "route": None,
            "power_level": self.power_level,
            "task_type": self.task_type,
            "input_tokens": inp,
            "output_tokens": out,
            "cached_tokens": cached,
            "estimated": estimated,
            "latency_ms": round((now - self.t0) * 1000, 3),
            "ttft_ms": self.ttft_ms,
            "status": self.status,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "stream": bool(self.inbound and self.inbound.stream),
            "fallbacks": self.fallbacks,
            "attempts": self.attempts,
            "source": self.source,
            "started_at": self.started_at,
        }
        if self.caller is not None:
            rec["user_id"] = self.caller.key.user_id
            rec["key_id"] = self.caller.key.id
            rec["_byok_fee"] = self.caller.byok_fee
        cand = self.served
        if cand is not None:
            d, p = cand.deployment, cand.provider
            rec["model"] = d.name
            rec["upstream_model"] = d.upstream_model
            rec["provider_id"] = p.id
            rec["provider"] = p.name
            rec["deployment_id"] = d.id
            rec["byok"] = cand.byok
            rec["route"] = cand.via
            if d.int_prices is not None:
                rec["_micro"] = d.int_prices
            else:
                rec["_prices"] = (d.input_price, d.output_price, d.cached_price)
        return rec
