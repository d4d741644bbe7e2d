"""Who is calling: bootstrap admin, minted admin token, OIDC JWT, or a user's virtual key."""

from __future__ import annotations

from turnout_common import auth
from turnout_common.auth import Principal
from turnout_common.errors import NotFound, PermissionDenied
from turnout_config_api.state import AppState


async def authenticate(state: AppState, authorization: str | None) -> Principal:
    """The bootstrap admin, an OIDC JWT, a minted admin token or an enabled user's live
    virtual key (:func:`turnout_common.auth.authenticate`); anything else is 401."""

    async def by_hash(digest: str) -> Principal | None:
        async with state.pool.acquire() as conn:
            admin = await conn.fetchrow(
                "SELECT id, name FROM admin_tokens WHERE token_hash = $1 AND NOT revoked", digest
            )
            if admin is not None:
                return Principal("admin", f"admin-token:{admin['name']}", key_id=admin["id"])
            key = await conn.fetchrow(
                "SELECT k.id, k.user_id FROM virtual_keys k JOIN users u ON u.id = k.user_id"
                " WHERE k.key_hash = $1 AND NOT k.revoked AND u.enabled"
                " AND (k.expires_at IS NULL OR k.expires_at > now())",
                digest,
            )
        return None if key is None else Principal("user", key["user_id"], key_id=key["id"])

    return await auth.authenticate(authorization, state.settings.admin_token, state.oidc, by_hash)


def require_admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied(
            "this needs an admin token; a user's virtual key may only read its own keys "
            "and provider-key hints"
        )
    return principal


def require_self_or_admin(principal: Principal, user_id: str) -> Principal:
    if not principal.is_admin and principal.subject != user_id:
        # 404 like an unknown id: another user's ids cannot be probed
        raise NotFound("no such key or user for this caller")
    return principal
