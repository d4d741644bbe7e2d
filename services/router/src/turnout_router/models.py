"""``GET /v1/models`` (and ``/v1/models/{model}``): the public model names this key may use."""

from __future__ import annotations

from typing import Any

from turnout_common.errors import NotFound
from turnout_router.auth import Caller
from turnout_router.state import Index


def list_models(index: Index, caller: Caller) -> dict[str, Any]:
    allowed = caller.key.allowed_models
    data = []
    for name in sorted(index.by_name):
        if allowed is not None and name not in allowed:
            continue
        usable = [
            d
            for d in index.by_name[name]
            if d.enabled
            and (p := index.providers.get(d.provider_id)) is not None
            and p.enabled
            and index.tier_rank(d.min_tier) <= caller.tier_rank
            and index.tier_rank(p.min_tier) <= caller.tier_rank
        ]
        if usable:
            d = usable[0]
            data.append(
                {
                    "id": name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "turnout",
                    "purposes": sorted({x for u in usable for x in u.purposes}),
                    "context_window": d.context_window,
                }
            )
    return {"object": "list", "data": data}


def get_model(index: Index, caller: Caller, name: str) -> dict[str, Any]:
    """One entry of :func:`list_models` (what the OpenAI SDK's ``models.retrieve`` reads)."""
    for entry in list_models(index, caller)["data"]:
        if entry["id"] == name:
            return dict(entry)
    raise NotFound(
        f"the model {name!r} does not exist or this key may not use it",
        code="model_not_found",
        param="model",
    )
