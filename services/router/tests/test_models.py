"""``/v1/models/{model}`` answers exactly what the ``/v1/models`` list holds for that key."""

from __future__ import annotations

from typing import Any

import pytest

from turnout_common.errors import NotFound
from turnout_router.auth import Caller
from turnout_router.entities import VirtualKey
from turnout_router.models import get_model, list_models
from turnout_router.state import Index, build_index


def _index() -> Index:
    entities: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {
        ("tier", "free"): (1, {"name": "free", "rank": 0}),
        ("tier", "pro"): (1, {"name": "pro", "rank": 2}),
        ("provider", "p1"): (1, {"id": "p1"}),
        ("provider", "p2"): (1, {"id": "p2", "min_tier": "pro"}),
        ("provider", "p3"): (1, {"id": "p3", "enabled": False}),
    }
    models = [
        {"id": "m1", "name": "alpha", "provider_id": "p1", "aliases": ["a"], "context_window": 8},
        {"id": "m2", "name": "alpha", "provider_id": "p2", "purposes": ["embeddings"]},
        {"id": "m3", "name": "beta", "provider_id": "p2", "deprecated": True},  # pro tier only
        {"id": "m4", "name": "gamma", "provider_id": "p3"},  # a disabled provider
        {"id": "m5", "name": "delta", "provider_id": "p1", "enabled": False},
        {"id": "m6", "name": "eps", "provider_id": "p1", "min_tier": "pro"},
    ]
    for m in models:
        entities[("model", str(m["id"]))] = (1, m)
    return build_index(entities)


def _caller(tier: str, rank: int, allowed: frozenset[str] | None = None) -> Caller:
    key = VirtualKey("k", "u", "h", allowed, None, None, None, False)
    return Caller(key, None, tier, rank, frozenset())


CALLERS = {
    "free": _caller("free", 0),
    "pro": _caller("pro", 2),
    "pro, alpha and beta only": _caller("pro", 2, frozenset({"alpha", "beta"})),
}


def test_the_list_holds_what_the_key_may_use() -> None:
    index = _index()
    free = list_models(index, CALLERS["free"])
    assert free["object"] == "list"
    assert [e["id"] for e in free["data"]] == ["a", "alpha"]
    assert free["data"][1] == {
        "id": "alpha",
        "object": "model",
        "created": 0,
        "owned_by": "turnout",
        "purposes": ["chat"],
        "context_window": 8,
        "deprecated": False,
    }
    pro = list_models(index, CALLERS["pro"])["data"]
    assert [e["id"] for e in pro] == ["a", "alpha", "beta", "eps"]
    assert pro[1]["purposes"] == ["chat", "embeddings"]
    assert pro[2]["deprecated"] is True  # every deployment of beta is deprecated


@pytest.mark.parametrize("who", CALLERS)
def test_one_model_is_its_entry_of_the_list_or_404(who: str) -> None:
    index, caller = _index(), CALLERS[who]
    listed = {e["id"]: e for e in list_models(index, caller)["data"]}
    for name in [*index.by_name, "no-such-model"]:
        if name in listed:
            assert get_model(index, caller, name) == listed[name]
        else:
            with pytest.raises(NotFound) as info:
                get_model(index, caller, name)
            assert (info.value.code, info.value.param) == ("model_not_found", "model")
