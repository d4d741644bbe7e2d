"""BYOK: ``/users/{user_id}/provider-keys`` (a user's own provider keys) and
``/byok/providers`` (the providers an admin opened to them).

A user, authorised by one of their own virtual keys, adds, replaces, tests and removes their
keys for the providers an admin opened to BYOK (``byok_enabled``); an admin does the same for
any user and any provider. A key is only ever sent to its provider's configured base URL:
no route takes a URL. Another user's keys answer 404."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from turnout_common.auth import Principal
from turnout_config_api.changes import Actor
from turnout_config_api.deps import PrincipalDep, StateDep, request_id
from turnout_config_api.schemas.common import Page
from turnout_config_api.schemas.keys import ByokOut, ByokPut
from turnout_config_api.schemas.providers import ByokProviderOut, ProbeResult
from turnout_config_api.security import require_self_or_admin
from turnout_config_api.services import byok, discovery

router = APIRouter(tags=["byok"])


def _actor(request: Request, principal: Principal) -> Actor:
    name = principal.subject if principal.is_admin else f"user:{principal.subject}"
    return Actor(name, request_id(request))


@router.get("/byok/providers", response_model=Page[ByokProviderOut])
async def byok_providers(
    state: StateDep, principal: PrincipalDep, user_id: str | None = None
) -> Page[ByokProviderOut]:
    """The enabled providers an admin opened to users' own keys, each with whether the caller
    (or, for an admin, ``user_id``) has a key for it. Never their URLs."""
    who = user_id if principal.is_admin and user_id else principal.subject
    rows = await byok.open_providers(state.pool, who)
    return Page[ByokProviderOut].whole([ByokProviderOut.model_validate(dict(r)) for r in rows])


@router.get("/users/{user_id}/provider-keys", response_model=Page[ByokOut])
async def list_byok(state: StateDep, principal: PrincipalDep, user_id: str) -> Page[ByokOut]:
    """The user's provider keys (hints only, never the keys)."""
    require_self_or_admin(principal, user_id)
    rows = await byok.list_for(state.pool, user_id)
    return Page[ByokOut].whole([ByokOut.model_validate(dict(r)) for r in rows])


@router.get("/users/{user_id}/provider-keys/{provider}", response_model=ByokOut)
async def get_byok(
    state: StateDep, principal: PrincipalDep, user_id: str, provider: str
) -> ByokOut:
    require_self_or_admin(principal, user_id)
    async with state.pool.acquire() as conn:
        return ByokOut.model_validate(dict(await byok.get(conn, user_id, provider)))


@router.put("/users/{user_id}/provider-keys/{provider}", response_model=ByokOut)
async def put_byok(
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    user_id: str,
    provider: str,
    body: ByokPut,
) -> ByokOut:
    """Adds or replaces the user's key for the provider (stored encrypted; answers its hint).
    A user may do so for themselves, for providers open to BYOK (404 for any other)."""
    require_self_or_admin(principal, user_id)
    row = await byok.put(
        state.pool,
        state.ring,
        _actor(request, principal),
        user_id,
        provider,
        body.api_key.get_secret_value(),
        open_only=not principal.is_admin,
    )
    return ByokOut.model_validate(dict(row))


@router.delete("/users/{user_id}/provider-keys/{provider}", status_code=204)
async def delete_byok(
    request: Request, state: StateDep, principal: PrincipalDep, user_id: str, provider: str
) -> Response:
    """Removes the user's key (the router stops using it as soon as the event arrives)."""
    require_self_or_admin(principal, user_id)
    await byok.delete(state.pool, _actor(request, principal), user_id, provider)
    return Response(status_code=204)


@router.post("/users/{user_id}/provider-keys/{provider}/test", response_model=ProbeResult)
async def probe_byok(
    state: StateDep, principal: PrincipalDep, user_id: str, provider: str
) -> ProbeResult:
    """Tries the stored key against the provider's configured URL (lists its models). A
    user may test their own keys, 10 times a minute (``TURNOUT_KEY_TESTS_PER_MINUTE``; 429
    with ``Retry-After`` beyond)."""
    require_self_or_admin(principal, user_id)
    async with state.pool.acquire() as conn:
        row = await byok.get(conn, user_id, provider)
    if not principal.is_admin:
        await byok.take_test_slot(state.pool, user_id, state.settings.key_tests_per_minute)
    secret = state.ring.decrypt(row["api_key_encrypted"])
    prov, result = await discovery.check_provider(
        state.pool,
        state.ring,
        state.http,
        row["provider_id"],
        state.settings.probe_timeout_s,
        key=secret,
    )
    return ProbeResult(provider=prov["name"], kind=prov["kind"], **result.__dict__)
