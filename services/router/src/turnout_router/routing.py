"""Pure candidate selection: which deployments may serve a request, in which order.

No I/O and no clock: given the :class:`~turnout_router.state.Index`, the
:class:`~turnout_router.state.Conditions` (health state and limits), the request's
:class:`Need` and a random source, :func:`plan` returns the ordered attempt chain (the
requested name's deployments, then its fallbacks, then the route's fallbacks) or raises
the error that explains why nothing can serve it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from turnout_common.errors import (
    BadRequest,
    ContextLengthExceeded,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    TurnoutError,
)
from turnout_router.entities import Deployment, Provider, RoutingRule
from turnout_router.load import Load
from turnout_router.state import Conditions, Index

AUTO = "auto"
Seq = tuple[str, tuple[str, ...], str | None]
"""(why: ``model``, ``rule:<id>`` or ``route:<purpose>``; the names to try; a rule's routing
strategy, or None for each name's own)."""


@dataclass(slots=True)
class Need:
    """What the request requires, inferred once from its body and headers."""

    purpose: str
    model: str
    tier: str = "free"
    tier_rank: int = 0
    prompt_tokens: int = 0
    max_tokens: int = 0
    tools: bool = False
    vision: bool = False
    json_mode: bool = False
    stream: bool = False
    power_level: str | None = None
    task_type: str | None = None
    allowed: frozenset[str] | None = None
    byok_providers: frozenset[str] = frozenset()
    fallback_on_context: bool = False
    """Opted in (``x-turnout-fallback-on-context: true``): a prompt too long for the model
    may be served by a fallback with another price."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.max_tokens


@dataclass(slots=True)
class Candidate:
    deployment: Deployment
    provider: Provider
    byok: bool
    via: str = "model"
    """Why this chain: ``model`` (the requested name's own chain), ``rule:<id>`` or
    ``route:<purpose>`` (``model: auto``)."""


# Reasons a deployment is filtered out, ranked: the highest rank among the requested
# name's deployments explains the error (the filter that came closest to serving it).
_DISABLED, _PURPOSE, _TIER, _CAPABILITY, _CONTEXT, _PRICE, _LATENCY, _UNAVAILABLE = range(8)


def _reject_reason(
    d: Deployment,
    p: Provider | None,
    need: Need,
    index: Index,
    cond: Conditions,
    price_cap: float | None,
    latency_cap: float | None,
) -> tuple[int, str] | None:
    if p is None or not d.enabled:
        return _DISABLED, f"model {d.name!r} is disabled"
    if need.purpose not in d.purposes:
        return _PURPOSE, f"model {d.name!r} does not serve {need.purpose}"
    if index.tier_rank(d.min_tier) > need.tier_rank or index.tier_rank(p.min_tier) > need.tier_rank:
        return _TIER, f"model {d.name!r} is not available on the {need.tier!r} tier"
    missing = _missing_capability(d, need)
    if missing:
        return _CAPABILITY, f"model {d.name!r} does not support {missing}"
    if d.context_window is not None and need.total_tokens > d.context_window:
        return _CONTEXT, (
            f"about {need.prompt_tokens} prompt tokens + {need.max_tokens} max_tokens exceed "
            f"the {d.context_window}-token context window of {d.name!r}; shorten the input"
        )
    if price_cap is not None and d.max_price > price_cap:
        return _PRICE, f"model {d.name!r} costs more than the {need.power_level} power level allows"
    if latency_cap is not None and (ms := cond.latency.get(d.provider_id)) is not None:
        if ms > latency_cap:
            return _LATENCY, (
                f"model {d.name!r}: its provider answers in {ms:.0f} ms, slower than the "
                f"{need.power_level} power level's {latency_cap:.0f} ms"
            )
    if not p.enabled or p.id in cond.unavailable or f"{p.id}:{d.id}" in cond.unavailable:
        return _UNAVAILABLE, f"no healthy upstream can serve {d.name!r} right now"
    return None


def _missing_capability(d: Deployment, need: Need) -> str | None:
    if need.tools and not d.tools:
        return "tools"
    if need.vision and not d.vision:
        return "image input"
    if need.json_mode and not d.json_mode:
        return "json mode (response_format)"
    if need.stream and not d.streaming:
        return "streaming"
    return None


NO_UPSTREAM_RETRY_S = 10
"""``Retry-After`` of ``no_healthy_upstream``: a probe or a half-open trial may bring one back."""


def no_healthy_upstream(message: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        message, code="no_healthy_upstream", headers={"retry-after": str(NO_UPSTREAM_RETRY_S)}
    )


def _error(rank: int, message: str) -> TurnoutError:
    if rank == _DISABLED:
        return NotFound(message, code="model_not_found", param="model")
    if rank == _TIER:
        return PermissionDenied(message, code="model_not_allowed", param="model")
    if rank == _CONTEXT:
        return ContextLengthExceeded(message, param="messages")
    if rank == _UNAVAILABLE:
        return no_healthy_upstream(message)
    if rank == _PRICE:
        return BadRequest(message, code="no_model_for_power_level")
    if rank == _LATENCY:
        return ServiceUnavailable(message, code="no_model_for_power_level")
    return BadRequest(message, code="model_not_capable", param="model")


def _needed(need: Need) -> tuple[str, ...]:
    flags = (("tools", need.tools), ("vision", need.vision), ("json_mode", need.json_mode))
    return tuple(name for name, wanted in flags if wanted)


def _order(
    cands: list[Candidate],
    rng: random.Random,
    need: Need,
    strategy: str = "weighted",
    load: Load | None = None,
) -> list[Candidate]:
    """BYOK first, deprecated deployments last, then those that declare the capabilities
    the request needs, then priority (lower first); among equals the ``strategy``'s order
    (:mod:`turnout_router.load`), ties in weighted random order."""
    if len(cands) < 2:
        return cands
    needed = _needed(need)
    busy = strategy == "least_busy" and load is not None
    fast = strategy == "latency" and load is not None

    def key(c: Candidate) -> tuple[int, bool, int, int, int, float, float]:
        w = max(c.deployment.weight * c.provider.weight, 1e-9)
        declared = c.deployment.declared
        score = 0.0
        if busy:
            assert load is not None
            score = load.busy(c.provider.id) / w
        elif fast:
            assert load is not None
            score = load.ttft.get(c.deployment.id, 0.0)
        return (
            0 if c.byok else 1,
            c.deployment.deprecated,
            sum(1 for n in needed if n not in declared),
            c.deployment.priority,
            c.provider.priority,
            score,
            -(rng.random() ** (1.0 / w)),  # Efraimidis-Spirakis weighted shuffle
        )

    return sorted(cands, key=key)


def candidates_for(
    name: str,
    index: Index,
    need: Need,
    cond: Conditions,
    rng: random.Random,
    strategy: str | None = None,
) -> tuple[list[Candidate], tuple[int, str] | None]:
    """Ordered candidates of one public name, and the best rejection reason if none pass
    (``strategy``: a routing rule's, else the name's own)."""
    level = need.power_level
    cap = cond.price_caps.get(level) if level else None
    lat_cap = cond.latency_caps.get(level) if level else None
    byok = need.byok_providers
    out: list[Candidate] = []
    worst: tuple[int, str] | None = None
    for d in index.by_name.get(name, ()):
        p = index.providers.get(d.provider_id)
        reason = _reject_reason(d, p, need, index, cond, cap, lat_cap)
        if reason is None:
            assert p is not None
            out.append(Candidate(d, p, bool(byok) and p.id in byok))
        elif worst is None or reason[0] > worst[0]:
            worst = reason
    strategy = strategy or index.strategies.get(name, "weighted")
    return _order(out, rng, need, strategy, cond.load), worst


def _finish(
    chain: list[Candidate], via: str, need: Need, cond: Conditions, rng: random.Random
) -> list[Candidate]:
    """Mark why, put the requested power level first (``auto``), demote trials, cut."""
    if via != "model":
        for c in chain:
            c.via = via
    if need.model == AUTO and need.power_level is not None:
        chain = _prefer_level(chain, need.power_level)
    if cond.trial:
        chain = _demote_trials(chain, cond.trial, cond.trial_share, rng)
    return chain[: cond.max_attempts]


def _prefer_level(chain: list[Candidate], level: str) -> list[Candidate]:
    """For ``auto``: models whose catalog power level is the requested one first, untagged
    ones next, those tagged for another level last (each group keeps its order)."""

    def rank(c: Candidate) -> int:
        tag = c.deployment.power_level
        return 0 if tag == level else 1 if tag is None else 2

    return sorted(chain, key=rank)  # stable


def _demote_trials(
    chain: list[Candidate], trial: frozenset[str], share: float, rng: random.Random
) -> list[Candidate]:
    keep: list[Candidate] = []
    later: list[Candidate] = []
    for c in chain:
        pid = c.provider.id
        on_trial = pid in trial or f"{pid}:{c.deployment.id}" in trial
        (later if on_trial and rng.random() >= share else keep).append(c)
    return keep + later


def _rule_targets(index: Index, need: Need, rng: random.Random) -> list[Seq]:
    """Target lists of the matching rules: by priority, weighted random among equals.

    For ``auto`` the rules without a ``model`` (or with ``auto``) match; for a named model,
    only the rules naming it.
    """
    named = need.model != AUTO
    matching = [
        r
        for r in _matching(index, need)
        if (r.model == need.model if named else r.model in (None, AUTO))
    ]
    if len(matching) > 1:
        matching.sort(key=lambda r: (r.priority, -(rng.random() ** (1.0 / max(r.weight, 1e-9)))))
    return [(f"rule:{r.id}", r.targets, r.routing_strategy) for r in matching]


def _matching(index: Index, need: Need) -> Iterable[RoutingRule]:
    total = need.total_tokens
    for r in index.rules:
        if (
            (r.power_level is None or r.power_level == need.power_level)
            and (r.tier is None or r.tier == need.tier)
            and (r.task_type is None or r.task_type == need.task_type)
            and (r.min_tokens is None or total >= r.min_tokens)
            and (r.max_tokens is None or total <= r.max_tokens)
            and (not r.requires_byok or bool(need.byok_providers))
        ):
            yield r


def _names(index: Index, need: Need, rng: random.Random) -> list[Seq]:
    """Name sequences to try, best first: each matching rule's targets, then for ``auto``
    the route, for a named model its own chain (the model, its fallbacks, the route's)."""
    route = index.routes.get(need.purpose)
    if need.model == AUTO:
        seqs = _rule_targets(index, need, rng)
        if route is not None:
            seqs.append((f"route:{route.purpose}", (route.model, *route.fallbacks), None))
        if not seqs:
            raise NotFound(
                f"model 'auto' found no routing rule and no route for {need.purpose}; "
                "configure a route (PUT /api/v1/routes/{purpose}) or name a model",
                code="model_not_found",
                param="model",
            )
        return seqs
    seq = index.chains.get((need.purpose, need.model))
    if seq is None:
        names = [need.model]
        for d in index.by_name.get(need.model, ()):
            names.extend(d.fallbacks)
        if route is not None and route.model == need.model:
            names.extend(route.fallbacks)
        seq = index.chains[(need.purpose, need.model)] = tuple(dict.fromkeys(names))
    if need.model in index.ruled_models:
        return [*_rule_targets(index, need, rng), ("model", seq, None)]
    return [("model", seq, None)]


def _check_name(index: Index, need: Need) -> None:
    """404 for a name that does not exist, 403 for one this key may not use."""
    if need.model != AUTO:
        if need.model not in index.known_names:
            raise NotFound(
                f"the model {need.model!r} does not exist; GET /v1/models lists the ones "
                "this key may use",
                code="model_not_found",
                param="model",
            )
        if need.allowed is not None and need.model not in need.allowed:
            raise PermissionDenied(
                f"this key may not use the model {need.model!r}",
                code="model_not_allowed",
                param="model",
            )


def _no_chain(best: tuple[int, str] | None, need: Need) -> TurnoutError:
    if best is None:
        return no_healthy_upstream(f"no deployment can serve {need.model!r}")
    if best[0] == _CONTEXT and not need.fallback_on_context:
        return ContextLengthExceeded(
            best[1] + "; or send 'x-turnout-fallback-on-context: true' to let a fallback "
            "model with a larger window (and another price) serve it",
            param="messages",
        )
    return _error(*best)


def plan(index: Index, need: Need, cond: Conditions, rng: random.Random) -> list[Candidate]:
    """The ordered attempt chain for ``need`` (never empty) or the error explaining why not.

    At most ``cond.max_attempts`` long. Half-open subjects (``cond.trial``) keep their place
    for ``cond.trial_share`` of the requests and go to the end of the chain otherwise: a
    recovering upstream gets trial traffic, not all of it, and still serves when nothing
    else can.
    """
    _check_name(index, need)
    best: tuple[int, str] | None = None
    for via, seq, strategy in _names(index, need, rng):
        chain: list[Candidate] = []
        seen: set[str] = set()
        overflow: set[tuple[Decimal, Decimal]] | None = None  # prices of a name too small
        for pos, name in enumerate(seq):
            if need.allowed is not None and name not in need.allowed:
                continue
            cands, why = candidates_for(name, index, need, cond, rng, strategy)
            if pos == 0 and why is not None and (best is None or why[0] > best[0]):
                best = why
            if pos == 0 and not cands and why is not None and why[0] == _CONTEXT:
                if not need.fallback_on_context:
                    overflow = {(d.input_price, d.output_price) for d in index.by_name[name]}
            elif overflow is not None:
                # never a silent swap to another price: only same-priced fallbacks serve
                cands = [c for c in cands if (c.deployment.input_price,
                                              c.deployment.output_price) in overflow]  # fmt: skip
            for c in cands:
                if c.deployment.id not in seen:
                    seen.add(c.deployment.id)
                    chain.append(c)
        if chain:
            return _finish(chain, via, need, cond, rng)
    raise _no_chain(best, need)
