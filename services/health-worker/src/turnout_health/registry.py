"""The config this worker needs, kept current from snapshot + ``turnout.config.v1``.

Providers (to probe) and minted admin-token hashes (to authenticate the API). Per
``(entity, entity_id)`` the highest applied revision wins; older events are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnout_common.events import ConfigEvent
from turnout_common.follow import Revisions

_TRACKED = ("provider", "admin_token")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: str
    name: str
    kind: str
    base_url: str | None
    enabled: bool
    api_key_encrypted: str | None
    is_system: bool
    timeout_s: float | None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ProviderConfig:
        timeout = data.get("timeout_s")
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or data["id"]),
            kind=str(data.get("kind") or "openai_compatible"),
            base_url=data.get("base_url") or None,
            enabled=bool(data.get("enabled", True)),
            api_key_encrypted=data.get("api_key_encrypted") or None,
            is_system=bool(data.get("is_system", False)),
            timeout_s=float(timeout) if timeout else None,
        )


class ConfigRegistry:
    """In-memory view of providers and admin tokens."""

    def __init__(self) -> None:
        self.providers: dict[str, ProviderConfig] = {}
        self.admin_token_hashes: set[str] = set()
        self._token_by_id: dict[str, str] = {}
        self._revisions = Revisions()

    def provider_id(self, ref: str) -> str:
        """A provider referenced by id or name (SPEC: names or ids), as its id; an id wins
        over another provider's equal name. Unknown refs come back unchanged (the history
        of a deleted provider is still found by its id)."""
        if ref in self.providers:
            return ref
        return next((p.id for p in self.providers.values() if p.name == ref), ref)

    def apply(self, event: ConfigEvent) -> bool:
        """Apply one event; False if it is untracked, stale or malformed."""
        if event.entity not in _TRACKED:
            return False
        if not self._revisions.accept(event):
            return False
        data = event.data if event.op == "upsert" else None
        if event.entity == "provider":
            self._apply_provider(event.entity_id, data)
        else:
            self._apply_admin_token(event.entity_id, data)
        return True

    def _apply_provider(self, provider_id: str, data: dict[str, Any] | None) -> None:
        cfg = ProviderConfig.from_data({"id": provider_id, **data}) if data else None
        if cfg is None:
            self.providers.pop(provider_id, None)
        else:
            self.providers[provider_id] = cfg

    def _apply_admin_token(self, token_id: str, data: dict[str, Any] | None) -> None:
        old = self._token_by_id.pop(token_id, None)
        if old is not None:
            self.admin_token_hashes.discard(old)
        if data and data.get("token_hash") and not data.get("revoked"):
            digest = str(data["token_hash"])
            self._token_by_id[token_id] = digest
            self.admin_token_hashes.add(digest)
