"""Rows -> the ``turnout.config.v1`` ``data`` shapes of docs/CONTRACTS.md (exactly)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

Row = Mapping[str, Any]

SECRET_FIELDS = frozenset({"api_key_encrypted", "key_hash", "token_hash"})
MASK = "***"


def money(value: Decimal | None) -> str | None:
    """A decimal string without trailing zeros (``"0.15"``, ``"500"``), or None."""
    if value is None:
        return None
    return format(value.normalize(), "f")


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def provider(r: Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "kind": r["kind"],
        "base_url": r["base_url"],
        "enabled": r["enabled"],
        "api_key_encrypted": r["api_key_encrypted"],
        "api_key_hint": r["api_key_hint"],
        "rpm_limit": r["rpm_limit"],
        "tpm_limit": r["tpm_limit"],
        "priority": r["priority"],
        "weight": r["weight"],
        "min_tier": r["min_tier"],
        "is_system": r["is_system"],
        "byok_enabled": r["byok_enabled"],
        "timeout_s": r["timeout_s"],
        "metadata": dict(r["metadata"] or {}),
    }


def model(r: Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "provider_id": r["provider_id"],
        "upstream_model": r["upstream_model"],
        "purposes": list(r["purposes"]),
        "context_window": r["context_window"],
        "max_output_tokens": r["max_output_tokens"],
        "capabilities": dict(r["capabilities"] or {}),
        "input_price_per_mtok": money(r["input_price_per_mtok"]),
        "output_price_per_mtok": money(r["output_price_per_mtok"]),
        "cached_price_per_mtok": money(r["cached_price_per_mtok"]),
        "power_level": r["power_level"],
        "min_tier": r["min_tier"],
        "enabled": r["enabled"],
        "deprecated": r["deprecated"],
        "priority": r["priority"],
        "weight": r["weight"],
        "routing_strategy": r["routing_strategy"],
        "fallbacks": list(r["fallbacks"]),
        "aliases": list(r["aliases"]),
    }


def route(r: Row) -> dict[str, Any]:
    return {"purpose": r["purpose"], "model": r["model"], "fallbacks": list(r["fallbacks"])}


def routing_rule(r: Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "enabled": r["enabled"],
        "priority": r["priority"],
        "power_level": r["power_level"],
        "tier": r["tier"],
        "task_type": r["task_type"],
        "model": r["model"],
        "min_tokens": r["min_tokens"],
        "max_tokens": r["max_tokens"],
        "requires_byok": r["requires_byok"],
        "targets": list(r["targets"]),
        "weight": r["weight"],
        "routing_strategy": r["routing_strategy"],
    }


def tier(r: Row) -> dict[str, Any]:
    return {
        "name": r["name"],
        "rank": r["rank"],
        "monthly_credits_usd": money(r["monthly_credits_usd"]),
        "rpm_limit": r["rpm_limit"],
        "tpm_limit": r["tpm_limit"],
        "byok_fee_pct": money(r["byok_fee_pct"]),
        "lab_monthly_quota": r["lab_monthly_quota"],
    }


def user(r: Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "tier": r["tier"],
        "monthly_budget_usd": money(r["monthly_budget_usd"]),
        "enabled": r["enabled"],
    }


def virtual_key(r: Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "user_id": r["user_id"],
        "name": r["name"],
        "key_hash": r["key_hash"],
        "key_hint": r["key_hint"],
        "allowed_models": list(r["allowed_models"]) if r["allowed_models"] is not None else None,
        "rpm_limit": r["rpm_limit"],
        "tpm_limit": r["tpm_limit"],
        "budget_usd": money(r["budget_usd"]),
        "expires_at": iso(r["expires_at"]),
        "revoked": r["revoked"],
    }


def byok_key(r: Row) -> dict[str, Any]:
    return {
        "user_id": r["user_id"],
        "provider_id": r["provider_id"],
        "api_key_encrypted": r["api_key_encrypted"],
        "api_key_hint": r["api_key_hint"],
    }


def admin_token(r: Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "token_hash": r["token_hash"],
        "revoked": r["revoked"],
    }


def byok_entity_id(r: Row) -> str:
    return f"{r['user_id']}:{r['provider_id']}"


# entity -> (table, row -> data, row -> entity_id); the order is the snapshot's order.
ENTITIES: dict[str, tuple[str, Callable[[Row], dict[str, Any]], Callable[[Row], str]]] = {
    "tier": ("tiers", tier, lambda r: str(r["name"])),
    "provider": ("providers", provider, lambda r: str(r["id"])),
    "model": ("models", model, lambda r: str(r["id"])),
    "route": ("routes", route, lambda r: str(r["purpose"])),
    "routing_rule": ("routing_rules", routing_rule, lambda r: str(r["id"])),
    "user": ("users", user, lambda r: str(r["id"])),
    "virtual_key": ("virtual_keys", virtual_key, lambda r: str(r["id"])),
    "byok_key": ("byok_keys", byok_key, byok_entity_id),
    "admin_token": ("admin_tokens", admin_token, lambda r: str(r["id"])),
}


def masked(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``data`` with secret material (ciphertext, hashes) replaced by ``***`` for the audit."""
    if data is None:
        return None
    return {k: (MASK if k in SECRET_FIELDS and v is not None else v) for k, v in data.items()}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{field: [old, new]}`` for every field that changed (inputs already masked)."""
    b, a = dict(before or {}), dict(after or {})
    return {k: [b.get(k), a.get(k)] for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k)}
