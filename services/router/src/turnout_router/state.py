"""In-memory config, health and credit state, with per-entity revisions and indexes.

Config events are applied in O(1) (idempotent by per-entity revision); the read-side
:class:`Index` is rebuilt lazily on the first request after a change, so a burst of events
(the snapshot at start) costs one rebuild and a request never sees a half-applied index.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from turnout_common.crypto import DecryptionError, KeyRing
from turnout_common.events import ConfigEvent
from turnout_router.entities import (
    TIER_RANKS,
    Deployment,
    Provider,
    Route,
    RoutingRule,
    Tier,
    User,
    VirtualKey,
)
from turnout_router.load import Load

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Index:
    """Read-side view used by the hot path; rebuilt as a whole after config changes."""

    providers: dict[str, Provider] = field(default_factory=dict)
    by_name: dict[str, tuple[Deployment, ...]] = field(default_factory=dict)
    known_names: frozenset[str] = frozenset()
    routes: dict[str, Route] = field(default_factory=dict)
    rules: tuple[RoutingRule, ...] = ()
    ruled_models: frozenset[str] = frozenset()
    """Requested model names that some enabled rule matches (``rule.model``)."""
    tiers: dict[str, Tier] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    keys_by_hash: dict[str, VirtualKey] = field(default_factory=dict)
    byok: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    byok_providers: dict[str, frozenset[str]] = field(default_factory=dict)
    strategies: dict[str, str] = field(default_factory=dict)
    """Public name -> its routing strategy, when not ``weighted``."""
    chains: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """Memo: (purpose, name) -> the name, its fallbacks and the route's fallbacks."""
    callers: dict[str, Any] = field(default_factory=dict)
    """Memo: key hash -> :class:`turnout_router.auth.Caller` (valid for this index only)."""
    by_token: dict[str, Any] = field(default_factory=dict)
    """Memo: bearer token -> Caller of a valid key, so a request skips the SHA-256 (bounded;
    only tokens that authenticated; valid for this index only, like ``callers``)."""

    def tier_rank(self, tier: str | None) -> int:
        if tier is None:
            return 0
        t = self.tiers.get(tier)
        return t.rank if t is not None else TIER_RANKS.get(tier, 0)


def _allow_by_id(idx: Index) -> None:
    """A key's ``allowed_models`` may name a catalog entry by id (SPEC: names or ids); the
    router compares public names, so an id also allows that entry's name and aliases."""
    names_of: dict[str, tuple[str, ...]] | None = None
    for h, k in list(idx.keys_by_hash.items()):
        if k.allowed_models is None or k.allowed_models <= idx.known_names:
            continue
        if names_of is None:
            names_of = {d.id: (d.name, *d.aliases) for ds in idx.by_name.values() for d in ds}
        extra = {n for m in k.allowed_models if m in names_of for n in names_of[m]}
        if extra:
            idx.keys_by_hash[h] = replace(k, allowed_models=k.allowed_models | extra)


def build_index(entities: dict[tuple[str, str], tuple[int, dict[str, Any]]]) -> Index:
    idx = Index()
    names: dict[str, list[Deployment]] = {}
    known: set[str] = set()
    rules: list[RoutingRule] = []
    byok_providers: dict[str, set[str]] = {}
    for (entity, _eid), (rev, data) in entities.items():
        try:
            if entity == "provider":
                p = Provider.from_data(data, rev)
                idx.providers[p.id] = p
            elif entity == "model":
                d = Deployment.from_data(data)
                for name in (d.name, *d.aliases):
                    known.add(name)
                    names.setdefault(name, []).append(d)
            elif entity == "route":
                r = Route.from_data(data)
                idx.routes[r.purpose] = r
            elif entity == "routing_rule":
                rules.append(RoutingRule.from_data(data))
            elif entity == "tier":
                t = Tier.from_data(data)
                idx.tiers[t.name] = t
            elif entity == "user":
                u = User.from_data(data)
                idx.users[u.id] = u
            elif entity == "virtual_key":
                k = VirtualKey.from_data(data)
                idx.keys_by_hash[k.key_hash] = k
            elif entity == "byok_key" and data.get("api_key_encrypted"):
                uid, pid = str(data["user_id"]), str(data["provider_id"])
                idx.byok[(uid, pid)] = (str(data["api_key_encrypted"]), rev)
                byok_providers.setdefault(uid, set()).add(pid)
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed %s entity (revision %s)", entity, rev)
    idx.by_name = {n: tuple(ds) for n, ds in names.items()}
    for n, ds in idx.by_name.items():
        # one strategy per name: its first deployment (by priority, id) that sets another
        for d in sorted(ds, key=lambda d: (d.priority, d.id)):
            if d.routing_strategy != "weighted":
                idx.strategies[n] = d.routing_strategy
                break
    idx.known_names = frozenset(known)
    _allow_by_id(idx)
    idx.rules = tuple(sorted((r for r in rules if r.enabled), key=lambda r: (r.priority, r.id)))
    idx.ruled_models = frozenset(r.model for r in idx.rules if r.model is not None)
    idx.byok_providers = {u: frozenset(p) for u, p in byok_providers.items()}
    return idx


@dataclass(frozen=True, slots=True)
class Conditions:
    """What routing needs besides the config: the health state and the settings' limits.

    Never mutated: :class:`RouterState` replaces it when the health state changes, so a
    request reads one consistent value with one attribute access and nothing is rebuilt
    per request.
    """

    unavailable: frozenset[str] = frozenset()
    """Provider ids and ``provider:deployment`` ids that are down or circuit-open."""
    trial: frozenset[str] = frozenset()
    """Subjects whose circuit is half-open: tried first only for ``trial_share`` of requests."""
    trial_share: float = 1.0
    latency: Mapping[str, float] = field(default_factory=dict)
    """Provider id -> the latest probe latency the health-worker reported (ms)."""
    price_caps: Mapping[str, float] = field(default_factory=dict)
    """Power level -> the highest price per million tokens it allows."""
    latency_caps: Mapping[str, float] = field(default_factory=dict)
    """Power level -> the slowest probe latency it allows (ms)."""
    max_attempts: int = 6
    """Upstream attempts per request, in all (the chain's length limit)."""
    load: Load = field(default_factory=Load)
    """Live load per upstream (in flight, vLLM queues, time to first token): one mutable
    object the gateway keeps current, read by the ``least_busy`` and ``latency`` orders."""


def _with(subjects: frozenset[str], subject: str, member: bool) -> frozenset[str]:
    """``subjects`` with or without ``subject``: the same object when nothing changes."""
    if (subject in subjects) == member:
        return subjects
    return subjects | {subject} if member else subjects - {subject}


@dataclass(slots=True)
class Credit:
    seq: int
    blocked: bool
    remaining_usd: float | None
    spent_usd: float = 0.0
    lab_blocked: bool = False
    """The user's testing-lab quota for the month is used up (metering's count)."""
    lab_quota: int | None = None


class RouterState:
    """Config + health + credit state of this replica (single event loop, no locks)."""

    def __init__(self, keyring: KeyRing | None) -> None:
        self._entities: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._index = Index()
        self._dirty = False
        self._keyring = keyring
        self._secrets: dict[tuple[str, int], str | None] = {}
        self.config_revision = 0
        self.config_loaded = False
        self.conditions = Conditions()
        """Health state and routing limits; replaced (never mutated) when health changes."""
        self._health: dict[str, tuple[str, str]] = {}
        self.credits: dict[str, Credit] = {}

    # --- config -------------------------------------------------------------------------
    def apply_config(self, event: ConfigEvent) -> bool:
        """Apply one event; False when an equal or newer revision is already held."""
        key = (event.entity, event.entity_id)
        held = self._entities.get(key)
        if held is not None and held[0] >= event.revision:
            return False
        if event.op == "delete" or event.data is None:
            # keep a tombstone revision so an older upsert cannot resurrect the entity
            self._entities[key] = (event.revision, {"__deleted__": True})
        else:
            self._entities[key] = (event.revision, event.data)
        self.config_revision = max(self.config_revision, event.revision)
        self._dirty = True
        return True

    @property
    def index(self) -> Index:
        if self._dirty:
            live = {k: v for k, v in self._entities.items() if "__deleted__" not in v[1]}
            self._index = build_index(live)
            self._dirty = False
        return self._index

    # --- secrets ------------------------------------------------------------------------
    def secret(self, cache_key: str, revision: int, token: str | None) -> str | None:
        """Plaintext of a Fernet ``token``, cached per (owner, revision); never logged."""
        if not token:
            return None
        ck = (cache_key, revision)
        if ck in self._secrets:
            return self._secrets[ck]  # failures are cached too: logged once per revision
        plain: str | None = None
        if self._keyring is None:
            log.error("%s has a key but TURNOUT_ENCRYPTION_KEYS is not set", cache_key)
        else:
            try:
                plain = self._keyring.decrypt(token)
            except DecryptionError:
                log.error("cannot decrypt the key of %s with the configured keys", cache_key)
        self._secrets[ck] = plain
        return plain

    # --- health -------------------------------------------------------------------------
    def apply_health(
        self,
        subject: str,
        status: str,
        circuit: str,
        auto_disabled: bool | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Skip what the health-worker auto-disabled; system providers are never disabled
        (SPEC §2), whatever their state. Events without the flag: skip down / open."""
        self._health[subject] = (status, circuit)
        skip = auto_disabled if auto_disabled is not None else status == "down" or circuit == "open"
        c = self.conditions
        unavailable = _with(c.unavailable, subject, skip)
        trial = _with(c.trial, subject, circuit == "half_open" and not skip)
        latency = c.latency
        # provider-level only: a probe's round trip, not a generation
        if ":" not in subject and latency.get(subject) != latency_ms:
            if latency_ms is None:
                latency = {k: v for k, v in latency.items() if k != subject}
            else:
                latency = {**latency, subject: latency_ms}
        if unavailable is not c.unavailable or trial is not c.trial or latency is not c.latency:
            self.conditions = replace(c, unavailable=unavailable, trial=trial, latency=latency)

    def health_of(self, subject: str) -> tuple[str, str] | None:
        return self._health.get(subject)

    # --- credit -------------------------------------------------------------------------
    def apply_credit(
        self,
        key: str,
        seq: int,
        blocked: bool,
        remaining: float | None,
        spent: float = 0.0,
        *,
        lab_blocked: bool = False,
        lab_quota: int | None = None,
    ) -> bool:
        held = self.credits.get(key)
        if held is not None and held.seq > seq:
            return False
        self.credits[key] = Credit(seq, blocked, remaining, spent, lab_blocked, lab_quota)
        return True
