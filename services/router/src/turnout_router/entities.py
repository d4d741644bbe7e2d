"""In-memory shapes of the config entities (docs/CONTRACTS.md), parsed once per change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from turnout_router.billing import fee_units

TIER_RANKS = {"free": 0, "starter": 1, "professional": 2, "enterprise": 3}


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def micro_price(price: Decimal) -> int | None:
    """Price per Mtok in micro-USD as an exact int (None if it has more than 6 decimals)."""
    scaled = price * 1_000_000
    return int(scaled) if scaled == scaled.to_integral_value() else None


def _weight(value: Any) -> float:
    return float(value) if value is not None else 1.0


def _epoch(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


@dataclass(slots=True, frozen=True)
class Provider:
    id: str
    name: str
    kind: str
    base_url: str
    enabled: bool
    api_key_encrypted: str | None
    rpm_limit: int | None
    tpm_limit: int | None
    priority: int
    weight: float
    min_tier: str | None
    timeout_s: float | None
    revision: int

    @classmethod
    def from_data(cls, d: dict[str, Any], revision: int) -> Provider:
        return cls(
            id=str(d["id"]),
            name=str(d.get("name") or d["id"]),
            kind=str(d.get("kind") or "openai_compatible"),
            base_url=str(d.get("base_url") or ""),
            enabled=bool(d.get("enabled", True)),
            api_key_encrypted=d.get("api_key_encrypted"),
            rpm_limit=_opt_int(d.get("rpm_limit")),
            tpm_limit=_opt_int(d.get("tpm_limit")),
            priority=int(d.get("priority") or 0),
            weight=_weight(d.get("weight")),
            min_tier=d.get("min_tier"),
            timeout_s=float(d["timeout_s"]) if d.get("timeout_s") else None,
            revision=revision,
        )


@dataclass(slots=True, frozen=True)
class Deployment:
    """One catalog ``model`` row: a public name served by one provider."""

    id: str
    name: str
    provider_id: str
    upstream_model: str
    purposes: frozenset[str]
    context_window: int | None
    max_output_tokens: int | None
    streaming: bool
    tools: bool
    vision: bool
    json_mode: bool
    input_price: Decimal
    output_price: Decimal
    cached_price: Decimal
    max_price: float
    int_prices: tuple[int, int, int] | None
    power_level: str | None
    min_tier: str | None
    enabled: bool
    priority: int
    weight: float
    fallbacks: tuple[str, ...]
    aliases: tuple[str, ...]
    deprecated: bool = False
    """Still served, but after the name's other deployments, and said in a response header."""
    declared: frozenset[str] = frozenset()
    """Capabilities the catalog declares true (preferred for requests that need them)."""
    routing_strategy: str = "weighted"
    """``weighted``, ``least_busy`` or ``latency``: how the name picks among its deployments
    of equal priority (:mod:`turnout_router.load`)."""

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Deployment:
        caps = d.get("capabilities") or {}
        inp, out = _dec(d.get("input_price_per_mtok")), _dec(d.get("output_price_per_mtok"))
        cached = d.get("cached_price_per_mtok")
        cached_dec = _dec(cached) if cached is not None else inp
        a, b, c = micro_price(inp), micro_price(out), micro_price(cached_dec)
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            provider_id=str(d["provider_id"]),
            upstream_model=str(d.get("upstream_model") or d["name"]),
            purposes=frozenset(d.get("purposes") or ("chat",)),
            context_window=_opt_int(d.get("context_window")),
            max_output_tokens=_opt_int(d.get("max_output_tokens")),
            # an undeclared capability passes through (the upstream decides); only an
            # explicit false refuses
            streaming=caps.get("streaming") is not False,
            tools=caps.get("tools") is not False,
            vision=caps.get("vision") is not False,
            json_mode=caps.get("json_mode") is not False,
            declared=frozenset(k for k, v in caps.items() if v is True),
            input_price=inp,
            output_price=out,
            cached_price=cached_dec,
            max_price=float(max(inp, out)),
            int_prices=(a, b, c) if a is not None and b is not None and c is not None else None,
            power_level=d.get("power_level"),
            deprecated=bool(d.get("deprecated", False)),
            min_tier=d.get("min_tier"),
            enabled=bool(d.get("enabled", True)),
            priority=int(d.get("priority") or 0),
            weight=_weight(d.get("weight")),
            fallbacks=tuple(d.get("fallbacks") or ()),
            aliases=tuple(d.get("aliases") or ()),
            routing_strategy=_strategy(d.get("routing_strategy")) or "weighted",
        )


@dataclass(slots=True, frozen=True)
class Route:
    purpose: str
    model: str
    fallbacks: tuple[str, ...]

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Route:
        return cls(str(d["purpose"]), str(d["model"]), tuple(d.get("fallbacks") or ()))


@dataclass(slots=True, frozen=True)
class RoutingRule:
    id: str
    enabled: bool
    priority: int
    power_level: str | None
    tier: str | None
    task_type: str | None
    model: str | None
    min_tokens: int | None
    max_tokens: int | None
    requires_byok: bool
    targets: tuple[str, ...]
    weight: float = 1.0
    routing_strategy: str | None = None
    """Overrides its targets' own strategy (None: each target name's)."""

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> RoutingRule:
        return cls(
            id=str(d["id"]),
            enabled=bool(d.get("enabled", True)),
            priority=int(d.get("priority") or 0),
            power_level=d.get("power_level"),
            tier=d.get("tier"),
            task_type=d.get("task_type"),
            model=d.get("model"),
            min_tokens=_opt_int(d.get("min_tokens")),
            max_tokens=_opt_int(d.get("max_tokens")),
            requires_byok=bool(d.get("requires_byok", False)),
            targets=tuple(d.get("targets") or ()),
            weight=float(d.get("weight") or 1),
            routing_strategy=_strategy(d.get("routing_strategy")),
        )


@dataclass(slots=True, frozen=True)
class Tier:
    name: str
    rank: int
    rpm_limit: int | None
    tpm_limit: int | None
    byok_fee: int = 0
    """``byok_fee_pct`` in millionths (:func:`turnout_router.billing.fee_units`)."""

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Tier:
        name = str(d["name"])
        rank = d.get("rank")
        return cls(
            name,
            int(rank) if rank is not None else TIER_RANKS.get(name, 0),
            _opt_int(d.get("rpm_limit")),
            _opt_int(d.get("tpm_limit")),
            fee_units(d.get("byok_fee_pct")),
        )


@dataclass(slots=True, frozen=True)
class User:
    id: str
    tier: str
    enabled: bool
    # the monthly budget: the remaining budget until metering's first credit event arrives
    budget_usd: float | None = None

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> User:
        budget = d.get("monthly_budget_usd")
        return cls(
            str(d["id"]),
            str(d.get("tier") or "free"),
            bool(d.get("enabled", True)),
            float(budget) if budget is not None else None,
        )


@dataclass(slots=True, frozen=True)
class VirtualKey:
    id: str
    user_id: str
    key_hash: str
    allowed_models: frozenset[str] | None
    rpm_limit: int | None
    tpm_limit: int | None
    expires_at: float | None
    revoked: bool

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> VirtualKey:
        allowed = d.get("allowed_models")
        return cls(
            id=str(d["id"]),
            user_id=str(d["user_id"]),
            key_hash=str(d["key_hash"]),
            allowed_models=frozenset(allowed) if allowed is not None else None,
            rpm_limit=_opt_int(d.get("rpm_limit")),
            tpm_limit=_opt_int(d.get("tpm_limit")),
            expires_at=_epoch(d.get("expires_at")),
            revoked=bool(d.get("revoked", False)),
        )


STRATEGIES = frozenset({"weighted", "least_busy", "latency"})


def _strategy(value: Any) -> str | None:
    """A known routing strategy, else None (an unknown one from a newer config-api)."""
    return value if value in STRATEGIES else None
