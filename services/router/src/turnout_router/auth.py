"""Virtual-key authentication: ``Bearer tk-…`` → sha256 → dict lookup in memory."""

from __future__ import annotations

from dataclasses import dataclass

from turnout_common.crypto import hash_virtual_key
from turnout_common.errors import AuthenticationFailed, PermissionDenied
from turnout_router.entities import User, VirtualKey
from turnout_router.state import Index

TOKEN_MEMO_MAX = 10_000
"""Distinct valid tokens remembered per config index (cleared when full)."""


@dataclass(slots=True)
class Caller:
    key: VirtualKey
    user: User | None
    tier: str
    tier_rank: int
    byok_providers: frozenset[str]
    byok_fee: int = 0
    """The tier's ``byok_fee_pct`` in millionths: what a BYOK-served request bills."""


def _bearer(authorization: str | None) -> str | None:
    if not authorization or len(authorization) < 8:
        return None
    if authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip() or None


def authenticate(index: Index, authorization: str | None, now: float) -> Caller:
    """The caller of a request, or 401 (missing, unknown, revoked or expired key)."""
    token = _bearer(authorization)
    if token is None:
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer <your Turnout key>'"
        )
    caller: Caller | None = index.by_token.get(token)
    if caller is None:
        digest = hash_virtual_key(token)
        caller = index.callers.get(digest)
        if caller is None:
            caller = _caller(index, digest)  # raises for unknown, revoked or disabled keys
            index.callers[digest] = caller
        if len(index.by_token) >= TOKEN_MEMO_MAX:
            index.by_token.clear()
        index.by_token[token] = caller
    key = caller.key
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthenticationFailed("this API key has expired", code="key_expired")
    return caller


def _caller(index: Index, digest: str) -> Caller:
    key = index.keys_by_hash.get(digest)
    if key is None:
        raise AuthenticationFailed("invalid API key")
    if key.revoked:
        raise AuthenticationFailed("this API key has been revoked", code="key_revoked")
    user = index.users.get(key.user_id)
    if user is not None and not user.enabled:
        raise PermissionDenied("the user of this API key is disabled", code="user_disabled")
    tier = user.tier if user is not None else "free"
    t = index.tiers.get(tier)
    return Caller(
        key,
        user,
        tier,
        index.tier_rank(tier),
        index.byok_providers.get(key.user_id, frozenset()),
        t.byok_fee if t is not None else 0,
    )
