"""What metering keeps from ``turnout.config.v1``: users, virtual keys, tiers, admin tokens.

Kept in memory (rebuilt from the snapshot at start). Per ``(entity, entity_id)`` the highest
revision applied wins; older events are ignored, so replays are harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from turnout_common.events import ConfigEvent
from turnout_common.follow import Revisions

TRACKED = frozenset({"user", "virtual_key", "tier", "admin_token"})


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _quota(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tier: str
    monthly_budget_usd: Decimal | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class VirtualKey:
    id: str
    user_id: str
    key_hash: str
    budget_usd: Decimal | None
    expires_at: datetime | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    rank: int
    monthly_credits_usd: Decimal
    lab_monthly_quota: int | None = None


@dataclass(frozen=True, slots=True)
class AdminToken:
    id: str
    token_hash: str
    revoked: bool


Subject = tuple[str, str]
"""``("user" | "key", id)``."""


class ConfigState:
    """In-memory config with change notification (subjects whose limits may have changed)."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.keys: dict[str, VirtualKey] = {}
        self.tiers: dict[str, Tier] = {}
        self.admin_tokens: dict[str, AdminToken] = {}
        self._revisions = Revisions()
        self._keys_by_hash: dict[str, str] = {}
        self.on_change: Callable[[set[Subject]], None] | None = None

    def apply(self, event: ConfigEvent) -> bool:
        """Apply one event; returns False if it is not tracked or older than what we hold."""
        if event.entity not in TRACKED:
            return False
        if not self._revisions.accept(event):
            return False
        data = event.data if event.op == "upsert" else None
        changed = self._store(event.entity, event.entity_id, data)
        if changed and self.on_change is not None:
            self.on_change(changed)
        return True

    def _store(self, entity: str, entity_id: str, data: dict[str, Any] | None) -> set[Subject]:
        if entity == "user":
            self.users.pop(entity_id, None)
            if data is not None:
                self.users[entity_id] = User(
                    id=entity_id,
                    tier=str(data.get("tier") or "free"),
                    monthly_budget_usd=_money(data.get("monthly_budget_usd")),
                    enabled=bool(data.get("enabled", True)),
                )
            return {("user", entity_id)}
        if entity == "virtual_key":
            old = self.keys.pop(entity_id, None)
            if old is not None:
                self._keys_by_hash.pop(old.key_hash, None)
            if data is not None:
                key = VirtualKey(
                    id=entity_id,
                    user_id=str(data.get("user_id") or ""),
                    key_hash=str(data.get("key_hash") or ""),
                    budget_usd=_money(data.get("budget_usd")),
                    expires_at=_time(data.get("expires_at")),
                    revoked=bool(data.get("revoked", False)),
                )
                self.keys[entity_id] = key
                if key.key_hash:
                    self._keys_by_hash[key.key_hash] = entity_id
            return {("key", entity_id)}
        if entity == "tier":
            self.tiers.pop(entity_id, None)
            if data is not None:
                self.tiers[entity_id] = Tier(
                    name=entity_id,
                    rank=int(data.get("rank") or 0),
                    monthly_credits_usd=_money(data.get("monthly_credits_usd")) or Decimal(0),
                    lab_monthly_quota=_quota(data.get("lab_monthly_quota")),
                )
            return {("user", u.id) for u in self.users.values() if u.tier == entity_id}
        # admin_token
        self.admin_tokens.pop(entity_id, None)
        if data is not None:
            self.admin_tokens[entity_id] = AdminToken(
                id=entity_id,
                token_hash=str(data.get("token_hash") or ""),
                revoked=bool(data.get("revoked", False)),
            )
        return set()

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        key_id = self._keys_by_hash.get(key_hash)
        return self.keys.get(key_id) if key_id else None

    def is_admin_hash(self, token_hash: str) -> bool:
        return any(t.token_hash == token_hash and not t.revoked for t in self.admin_tokens.values())

    def lab_quota(self, user_id: str) -> int | None:
        """The user's tier's testing-lab requests per month (None: no quota)."""
        user = self.users.get(user_id)
        tier = self.tiers.get(user.tier) if user else None
        return tier.lab_monthly_quota if tier else None

    def tier_credits(self, user_id: str) -> Decimal:
        user = self.users.get(user_id)
        tier = self.tiers.get(user.tier) if user else None
        return tier.monthly_credits_usd if tier else Decimal(0)
