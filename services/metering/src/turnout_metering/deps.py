"""FastAPI dependencies: the runtime and the caller (admin, or a user via its virtual key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from turnout_common.auth import Principal, authenticate
from turnout_common.errors import NotFound, PermissionDenied
from turnout_common.oidc import OidcVerifier, oidc_settings
from turnout_metering.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_oidc(request: Request, runtime: RuntimeDep) -> OidcVerifier | None:
    """The OIDC verifier (SSO): ``app.state.oidc`` if the app set one, else built once from
    the settings (``oidc_*`` fields, if they have them) or ``TURNOUT_OIDC_*``."""
    state = request.app.state
    verifier: OidcVerifier | None
    try:
        verifier = state.oidc
    except AttributeError:
        verifier = state.oidc = OidcVerifier.from_settings(oidc_settings(runtime.settings))
    return verifier


async def get_principal(
    runtime: RuntimeDep,
    oidc: Annotated[OidcVerifier | None, Depends(get_oidc)],
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """Admins: bootstrap token, minted admin token, OIDC JWT with the admin role. Users: a
    virtual key, or an OIDC JWT without it (its ``sub``). Anything else is 401."""

    async def by_hash(digest: str) -> Principal | None:
        if runtime.config.is_admin_hash(digest):
            return Principal("admin", "admin_token")
        key = runtime.config.key_by_hash(digest)
        if key is None or key.revoked:
            return None
        user = runtime.config.users.get(key.user_id)
        if user is not None and not user.enabled:
            raise PermissionDenied(
                "this key's user is disabled; ask an admin", code="user_disabled"
            )
        if key.expires_at is None or key.expires_at > datetime.now(UTC):
            return Principal("user", key.user_id, key.id)
        return None

    return await authenticate(authorization, runtime.settings.admin_token, oidc, by_hash)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("this action needs an admin token")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def scoped_user(principal: Principal, user_id: str | None) -> str | None:
    """The user whose data the caller may see: admins any (None = all), users only their own."""
    if principal.is_admin:
        return user_id
    if user_id is not None and user_id != principal.subject:
        # 404 like an unknown id: another user's ids cannot be probed
        raise NotFound(f"no user {user_id!r} visible to this key")
    return principal.subject


@dataclass(frozen=True, slots=True)
class PageQuery:
    """One page of an admin list (dead letters, erasures, alert deliveries), newest first."""

    limit: int
    offset: int


def page_query(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> PageQuery:
    return PageQuery(limit, offset)


PageDep = Annotated[PageQuery, Depends(page_query)]
