"""Property tests for the pure routing engine (hypothesis) and a few exact cases."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout_common.errors import NotFound, PermissionDenied, TurnoutError
from turnout_router.entities import RoutingRule
from turnout_router.routing import Need, plan
from turnout_router.state import Conditions, build_index

NAMES = ["alpha", "beta", "gamma"]
TIERS = ["free", "starter", "professional", "enterprise"]
RANK = {t: i for i, t in enumerate(TIERS)}
CAPS = {"eco": 1.0, "balanced": 5.0, "precision": 1e6}


def cond(down: Iterable[str] = (), trial: Iterable[str] = (), **kw: Any) -> Conditions:
    """Routing conditions: nothing down or on trial and the ``CAPS`` price caps unless told."""
    kw.setdefault("price_caps", CAPS)
    return Conditions(unavailable=frozenset(down), trial=frozenset(trial), **kw)


providers = st.lists(
    st.fixed_dictionaries(
        {
            "enabled": st.booleans(),
            "min_tier": st.sampled_from([None, *TIERS]),
            "priority": st.integers(0, 2),
            "weight": st.sampled_from([1, 2, 5]),
        }
    ),
    min_size=1,
    max_size=4,
)
models = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(NAMES),
            "provider": st.integers(0, 3),
            "enabled": st.booleans(),
            "purposes": st.lists(st.sampled_from(["chat", "embeddings"]), min_size=1, unique=True),
            "context_window": st.sampled_from([None, 100, 4000]),
            "tools": st.booleans(),
            "vision": st.booleans(),
            "streaming": st.booleans(),
            "price": st.sampled_from(["0.5", "3", "20"]),
            "min_tier": st.sampled_from([None, *TIERS]),
            "priority": st.integers(0, 2),
            "fallbacks": st.lists(st.sampled_from(NAMES), max_size=2),
        }
    ),
    min_size=1,
    max_size=8,
)
needs = st.fixed_dictionaries(
    {
        "model": st.sampled_from([*NAMES, "auto"]),
        "tier": st.sampled_from(TIERS),
        "prompt_tokens": st.integers(0, 300),
        "max_tokens": st.integers(0, 300),
        "tools": st.booleans(),
        "vision": st.booleans(),
        "stream": st.booleans(),
        "power_level": st.sampled_from([None, "eco", "balanced", "precision"]),
        "purpose": st.sampled_from(["chat", "embeddings"]),
        "allowed": st.sampled_from([None, frozenset(["alpha"]), frozenset(["alpha", "beta"])]),
        "byok": st.sampled_from([frozenset(), frozenset(["p0"]), frozenset(["p1", "p2"])]),
    }
)


def make_index(
    provs: list[dict[str, Any]],
    mods: list[dict[str, Any]],
    extra: dict[tuple[str, str], tuple[int, dict[str, Any]]] | None = None,
) -> Any:
    entities: dict[tuple[str, str], tuple[int, dict[str, Any]]] = dict(extra or {})
    for i, p in enumerate(provs):
        entities[("provider", f"p{i}")] = (
            1,
            {"id": f"p{i}", "name": f"p{i}", "kind": "vllm", "base_url": "http://x", **p},
        )
    for i, m in enumerate(mods):
        data = {
            "id": f"m{i}",
            "name": m["name"],
            "provider_id": f"p{m['provider'] % len(provs)}",
            "upstream_model": "u",
            "purposes": m["purposes"],
            "context_window": m["context_window"],
            "capabilities": {
                "tools": m["tools"],
                "vision": m["vision"],
                "streaming": m["streaming"],
                "json_mode": True,
            },
            "input_price_per_mtok": m["price"],
            "output_price_per_mtok": m["price"],
            "min_tier": m["min_tier"],
            "enabled": m["enabled"],
            "priority": m["priority"],
            "fallbacks": m["fallbacks"],
            "power_level": m.get("power_level"),
            "deprecated": m.get("deprecated", False),
        }
        entities[("model", f"m{i}")] = (1, data)
    entities[("route", "chat")] = (1, {"purpose": "chat", "model": "alpha", "fallbacks": ["beta"]})
    for t in TIERS:
        entities[("tier", t)] = (1, {"name": t, "rank": RANK[t]})
    return build_index(entities)


def model_spec(name: str = "alpha", provider: int = 0, **kw: Any) -> dict[str, Any]:
    """A ``make_index`` model: chat, every capability, price 1, no limits (unless told)."""
    return {
        "name": name,
        "provider": provider,
        "enabled": True,
        "purposes": ["chat"],
        "context_window": None,
        "tools": True,
        "vision": True,
        "streaming": True,
        "price": "1",
        "min_tier": None,
        "priority": 0,
        "fallbacks": [],
        **kw,
    }


def provider_spec(**kw: Any) -> dict[str, Any]:
    """A ``make_index`` provider: enabled, any tier, priority 0, weight 1 (unless told)."""
    return {"enabled": True, "min_tier": None, "priority": 0, "weight": 1, **kw}


@settings(max_examples=300, deadline=None)
@given(providers, models, needs, st.sets(st.sampled_from(["p0", "p1", "p2", "p3"])), st.integers())
def test_every_candidate_passes_every_filter(
    provs: Any, mods: Any, n: dict[str, Any], down: set[str], seed: int
) -> None:
    index = make_index(provs, mods)
    need = Need(
        purpose=n["purpose"],
        model=n["model"],
        tier=n["tier"],
        tier_rank=RANK[n["tier"]],
        prompt_tokens=n["prompt_tokens"],
        max_tokens=n["max_tokens"],
        tools=n["tools"],
        vision=n["vision"],
        stream=n["stream"],
        power_level=n["power_level"],
        allowed=n["allowed"],
        byok_providers=n["byok"],
    )
    failure: TurnoutError | None = None
    try:
        chain = plan(index, need, cond(down, max_attempts=6), random.Random(seed))
    except TurnoutError as err:
        failure = err
    if failure is not None:
        assert failure.status in (400, 403, 404, 503)
        explicit = n["model"] != "auto"
        if explicit and n["model"] not in index.known_names:
            assert isinstance(failure, NotFound)
        elif explicit and n["allowed"] is not None and n["model"] not in n["allowed"]:
            assert isinstance(failure, PermissionDenied)
        return
    assert 1 <= len(chain) <= 6
    assert len({c.deployment.id for c in chain}) == len(chain)
    for c in chain:
        d, p = c.deployment, c.provider
        assert d.enabled and p.enabled and p.id not in down
        assert need.purpose in d.purposes
        assert RANK.get(d.min_tier or "free", 0) <= need.tier_rank
        assert RANK.get(p.min_tier or "free", 0) <= need.tier_rank
        assert d.tools or not need.tools
        assert d.vision or not need.vision
        assert d.streaming or not need.stream
        assert d.context_window is None or need.total_tokens <= d.context_window
        if need.power_level:
            assert d.max_price <= CAPS[need.power_level]
        if need.allowed is not None:
            assert d.name in need.allowed
        assert c.byok == (p.id in need.byok_providers)
    # the requested name's own deployments come first, BYOK first, then by priority
    if need.model != "auto" and chain[0].deployment.name == need.model:
        head = [c for c in chain if c.deployment.name == need.model]
        assert chain[: len(head)] == head
        keys = [(0 if c.byok else 1, c.deployment.priority, c.provider.priority) for c in head]
        assert keys == sorted(keys)


def test_weighted_choice_among_equals() -> None:
    index = make_index(
        [
            provider_spec(weight=3),
            provider_spec(),
        ],
        [model_spec(provider=i) for i in (0, 1)],
    )
    rng = random.Random(7)
    need = Need(purpose="chat", model="alpha")
    firsts = [plan(index, need, cond(), rng)[0].provider.id for _ in range(4000)]
    share = firsts.count("p0") / len(firsts)
    assert 0.70 < share < 0.80  # 3:1 weights -> 75 %


def test_auto_uses_rules_then_route() -> None:
    index = make_index(
        [provider_spec()], [model_spec("alpha"), model_spec("beta"), model_spec("gamma")]
    )
    rng = random.Random(1)
    chain = plan(index, Need(purpose="chat", model="auto"), cond(), rng)
    assert [c.deployment.name for c in chain] == ["alpha", "beta"]  # the route
    rule = {
        "id": "r1",
        "enabled": True,
        "priority": 0,
        "power_level": "eco",
        "tier": None,
        "task_type": "code",
        "model": None,
        "min_tokens": None,
        "max_tokens": None,
        "requires_byok": False,
        "targets": ["gamma", "alpha"],
    }
    index.rules = (RoutingRule.from_data(rule),)
    eco_code = Need(purpose="chat", model="auto", power_level="eco", task_type="code")
    assert [c.deployment.name for c in plan(index, eco_code, cond(), rng)] == [
        "gamma",
        "alpha",
    ]
    eco_chat = Need(purpose="chat", model="auto", power_level="eco", task_type="chat")
    assert plan(index, eco_chat, cond(), rng)[0].deployment.name == "alpha"


def _three_names(extra: dict[tuple[str, str], tuple[int, dict[str, Any]]] | None = None) -> Any:
    return make_index([provider_spec()], [model_spec(n) for n in ("alpha", "beta", "gamma")], extra)


def _rule(rid: str, targets: list[str], **fields: Any) -> RoutingRule:
    data: dict[str, Any] = {"id": rid, "enabled": True, "priority": 0, "targets": targets}
    return RoutingRule.from_data({**data, **fields})


def test_a_rule_naming_a_model_reroutes_requests_for_it() -> None:
    index = _three_names()
    index.rules = (_rule("r1", ["gamma", "beta"], model="beta", task_type="code"),)
    index.ruled_models = frozenset({"beta"})
    rng = random.Random(5)

    def names(**need: Any) -> list[str]:
        chain = plan(index, Need(purpose="chat", **need), cond(), rng)
        return [c.deployment.name for c in chain]

    assert names(model="beta", task_type="code") == ["gamma", "beta"]  # the rule's targets
    code = Need(purpose="chat", model="beta", task_type="code")
    assert {c.via for c in plan(index, code, cond(), rng)} == {"rule:r1"}
    chat = Need(purpose="chat", model="beta", task_type="chat")
    assert {c.via for c in plan(index, chat, cond(), rng)} == {"model"}
    auto = Need(purpose="chat", model="auto")
    assert {c.via for c in plan(index, auto, cond(), rng)} == {"route:chat"}
    assert names(model="beta", task_type="chat") == ["beta"]  # conditions still apply
    assert names(model="alpha", task_type="code") == ["alpha", "beta"]  # other models: as before
    assert names(model="auto", task_type="code") == ["alpha", "beta"]  # not an auto rule
    # a key that may not use the rule's target keeps its own model
    only_beta = Need(purpose="chat", model="beta", task_type="code", allowed=frozenset({"beta"}))
    assert [c.deployment.name for c in plan(index, only_beta, cond(), rng)] == ["beta"]
    # a rule whose targets cannot serve: the requested model's own chain does
    index.rules = (_rule("r2", ["no-such-model"], model="alpha"),)
    index.ruled_models = frozenset({"alpha"})
    assert names(model="alpha") == ["alpha", "beta"]


def test_rule_weight_splits_traffic_among_rules_of_equal_priority() -> None:
    index = _three_names()
    index.rules = (
        _rule("r1", ["beta"], weight=3),
        _rule("r2", ["gamma"], weight=1),
        _rule("r3", ["alpha"], priority=5, weight=100),  # a later priority never goes first
    )
    rng = random.Random(9)
    firsts = [
        plan(index, Need(purpose="chat", model="auto"), cond(), rng)[0].deployment.name
        for _ in range(4000)
    ]
    assert "alpha" not in firsts
    assert 0.70 < firsts.count("beta") / len(firsts) < 0.80  # 3:1


def test_unknown_model_is_404() -> None:
    index = make_index([provider_spec()], [])
    with pytest.raises(NotFound) as info:
        plan(index, Need(purpose="chat", model="nope"), cond(), random.Random())
    assert info.value.code == "model_not_found"


def _two_equal_providers(priority_b: int = 0) -> Any:
    return make_index(
        [provider_spec(), provider_spec(priority=priority_b)],
        [model_spec(provider=0), model_spec(provider=1)],
    )


@pytest.mark.parametrize("subject", ["p0", "p0:m0"])
def test_a_half_open_subject_goes_first_only_for_its_trial_share(subject: str) -> None:
    index = _two_equal_providers(priority_b=1)  # p0 would always go first
    need = Need(purpose="chat", model="alpha")
    rng = random.Random(11)
    trial = {subject}

    def first(share: float) -> str:
        return plan(index, need, cond(trial=trial, trial_share=share), rng)[0].provider.id

    assert {first(1.0) for _ in range(50)} == {"p0"}  # share 1: the old behaviour
    chains = [plan(index, need, cond(trial=trial, trial_share=0.0), rng) for _ in range(50)]
    # share 0: always demoted, but still in the chain as the last fallback
    assert {tuple(c.provider.id for c in chain) for chain in chains} == {("p1", "p0")}
    firsts = [first(0.2) for _ in range(4000)]
    assert 0.16 < firsts.count("p0") / len(firsts) < 0.24


def test_a_half_open_subject_that_is_the_only_candidate_still_serves() -> None:
    index = _two_equal_providers()
    need = Need(purpose="chat", model="alpha")
    rng = random.Random(3)
    chain = plan(index, need, cond({"p1"}, {"p0"}, trial_share=0.0), rng)
    assert [c.provider.id for c in chain] == ["p0"]


def test_a_key_may_allow_a_catalog_entry_by_id() -> None:
    key = {
        "id": "k1",
        "user_id": "u1",
        "key_hash": "h1",
        "allowed_models": ["m1", "alpha"],  # m1 is beta's catalog id; alpha a name
    }
    index = _three_names({("virtual_key", "k1"): (1, key)})
    allowed = index.keys_by_hash["h1"].allowed_models
    assert allowed == frozenset({"m1", "alpha", "beta"})
    chain = plan(
        index, Need(purpose="chat", model="beta", allowed=allowed), cond(), random.Random(1)
    )
    assert chain[0].deployment.name == "beta"


def test_power_level_latency_limits_use_the_providers_probe_latency() -> None:
    index = make_index(
        [provider_spec(), provider_spec(priority=1)],
        [model_spec(provider=i, price="0.5") for i in (0, 1)],
    )
    lat_caps = {"eco": 10_000.0, "precision": 2_000.0}
    latency = {"p0": 3_000.0, "p1": 400.0}  # p0 is preferred (priority) but slow
    rng = random.Random(2)

    def providers(level: str | None) -> list[str]:
        need = Need(purpose="chat", model="alpha", power_level=level)
        chain = plan(index, need, cond(latency_caps=lat_caps, latency=latency), rng)
        return [c.provider.id for c in chain]

    assert providers(None) == ["p0", "p1"]  # no power level: no latency limit
    assert providers("eco") == ["p0", "p1"]  # 3 s is within eco's 10 s
    assert providers("precision") == ["p1"]  # 3 s is over precision's 2 s
    assert providers("balanced") == ["p0", "p1"]  # no cap configured for balanced here
    slow = {"p0": 3_000.0, "p1": 2_500.0}
    need = Need(purpose="chat", model="alpha", power_level="precision")
    with pytest.raises(TurnoutError) as info:
        plan(index, need, cond(latency_caps=lat_caps, latency=slow), rng)
    assert info.value.status == 503 and info.value.code == "no_model_for_power_level"
    assert "slower than the precision power level's 2000 ms" in info.value.message


def test_auto_prefers_models_of_the_requested_power_level() -> None:
    index = make_index(
        [provider_spec() for _ in range(3)],
        [  # the chat route is alpha, then beta
            model_spec("alpha", 0, price="0.1", power_level="precision"),
            model_spec("alpha", 1, price="0.1", priority=1),
            model_spec("beta", 2, price="0.1", power_level="eco"),
        ],
    )
    rng = random.Random(3)

    def chain(model_name: str, level: str | None) -> list[str]:
        need = Need(purpose="chat", model=model_name, power_level=level)
        return [c.provider.id for c in plan(index, need, cond(), rng)]

    assert chain("auto", None) == ["p0", "p1", "p2"]  # the route's order
    assert chain("auto", "eco") == ["p2", "p1", "p0"]  # eco first, untagged, then precision
    assert chain("auto", "precision") == ["p0", "p1", "p2"]
    assert chain("auto", "balanced") == ["p1", "p0", "p2"]  # untagged before other levels
    assert chain("alpha", "eco") == ["p0", "p1", "p2"]  # a named model keeps its own order


def test_deprecated_deployments_serve_after_the_others() -> None:
    index = make_index(
        [provider_spec() for _ in range(2)],
        # the deprecated one has the better priority
        [
            model_spec(provider=0, price="0.1", deprecated=True),
            model_spec(provider=1, price="0.1", priority=5),
        ],
    )
    need = Need(purpose="chat", model="alpha")
    chain = plan(index, need, cond(), random.Random(4))
    assert [(c.provider.id, c.deployment.deprecated) for c in chain] == [
        ("p1", False),
        ("p0", True),
    ]
