"""``GET /v1/models`` (and ``/v1/models/{model}``): the public model names this key may use."""

from __future__ import annotations

from typing import Any

from turnout_common.errors import NotFound
from turnout_router.auth import Caller
from turnout_router.state import Index


def _entry(index: Index, caller: Caller, name: str) -> dict[str, Any] | None:
    """The entry of one public name, or None when this key may not use it."""
    allowed = caller.key.allowed_models
    if allowed is not None and name not in allowed:
        return None
    usable = [
        d
        for d in index.by_name.get(name, ())
        if d.enabled
        and (p := index.providers.get(d.provider_id)) is not None
        and p.enabled
        and index.tier_rank(d.min_tier) <= caller.tier_rank
        and index.tier_rank(p.min_tier) <= caller.tier_rank
    ]
    if not usable:
        return None
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "turnout",
        "purposes": sorted({x for u in usable for x in u.purposes}),
        "context_window": usable[0].context_window,
        "deprecated": all(d.deprecated for d in usable),
    }


def list_models(index: Index, caller: Caller) -> dict[str, Any]:
    entries = (_entry(index, caller, name) for name in sorted(index.by_name))
    return {"object": "list", "data": [e for e in entries if e is not None]}


def get_model(index: Index, caller: Caller, name: str) -> dict[str, Any]:
    """One entry of :func:`list_models` (what the OpenAI SDK's ``models.retrieve`` reads)."""
    entry = _entry(index, caller, name)
    if entry is None:
        raise NotFound(
            f"the model {name!r} does not exist or this key may not use it",
            code="model_not_found",
            param="model",
        )
    return entry
