"""Declarative config: apply is idempotent, prints a diff, refuses literal secrets; export
round-trips without secrets."""

from __future__ import annotations

import pytest
import yaml

from turnout_common.errors import ValidationFailed
from turnout_config_api.declarative import apply, export, load_file

DOC = """
tiers:
  decl-gold: {rank: 4, monthly_credits_usd: 900}
providers:
  - {name: decl-local, kind: ollama}
  - {name: decl-cloud, kind: together, api_key: "${DECL_TOGETHER_KEY}", priority: 2}
models:
  - {provider: decl-local, upstream_model: "llama3.2:3b", name: decl-llama, purposes: [chat],
     input_price_per_mtok: 0, output_price_per_mtok: 0, power_level: eco}
  - {provider: decl-cloud, upstream_model: meta-llama/Llama-3.3-70B, name: decl-llama,
     input_price_per_mtok: 0.88, output_price_per_mtok: 0.88}
routes:
  completion: {model: decl-llama, fallbacks: []}
routing_rules:
  - {name: decl-eco, power_level: eco, targets: [decl-llama], priority: 10}
users:
  - {id: decl-dana, tier: decl-gold, monthly_budget_usd: 25}
"""
ENV = {"DECL_TOGETHER_KEY": "tgp-secret-value-31337"}


async def test_apply_is_idempotent_and_audited(app, client, admin, tmp_path) -> None:
    state = app.state.config_api
    path = tmp_path / "turnout.yaml"
    path.write_text(DOC)
    doc = load_file(path)
    planned = await apply(state.pool, state.ring, doc, env=ENV, dry_run=True)
    assert (await client.get("/api/v1/providers/decl-local", headers=admin)).status_code == 404
    diff = await apply(state.pool, state.ring, doc, env=ENV)
    assert diff == planned and len(diff) == 8
    assert diff[0] == "+ tier decl-gold" and "+ provider decl-cloud" in diff
    assert await apply(state.pool, state.ring, doc, env=ENV) == []  # idempotent

    cloud = (await client.get("/api/v1/providers/decl-cloud", headers=admin)).json()
    assert (
        cloud["api_key_hint"] == "tgp…1337" and cloud["base_url"] == "https://api.together.xyz/v1"
    )
    audit = (await client.get("/api/v1/audit?actor=config-file", headers=admin)).json()
    assert audit["total"] == 8

    changed = yaml.safe_load(DOC)
    changed["models"][1]["output_price_per_mtok"] = 0.9
    diff = await apply(
        state.pool, state.ring, changed, env={"DECL_TOGETHER_KEY": "tgp-rotated-0000"}
    )
    assert diff == [
        "~ provider decl-cloud: api_key",
        "~ model decl-llama on decl-cloud: output_price_per_mtok",
    ]


async def test_literal_secrets_and_bad_input_are_refused(app) -> None:
    state = app.state.config_api
    literal = {"providers": [{"name": "decl-bad", "kind": "openai", "api_key": "sk-literal-123"}]}
    with pytest.raises(ValidationFailed, match="environment reference"):
        await apply(state.pool, state.ring, literal, env={})
    missing = {"providers": [{"name": "decl-bad", "kind": "openai", "api_key": "${NOPE_KEY}"}]}
    with pytest.raises(ValidationFailed, match="NOPE_KEY is not set"):
        await apply(state.pool, state.ring, missing, env={})
    with pytest.raises(ValidationFailed, match=r"providers\[0\].kind"):
        await apply(state.pool, state.ring, {"providers": [{"name": "decl-x", "kind": "azure"}]})
    with pytest.raises(ValidationFailed, match="unknown top-level"):
        await apply(state.pool, state.ring, {"provider": []})


async def test_export_round_trips_without_secrets(app) -> None:
    state = app.state.config_api
    await apply(state.pool, state.ring, yaml.safe_load(DOC), env=ENV)
    exported = await export(state.pool)
    text = yaml.safe_dump(exported)
    assert "tgp-" not in text and "gAAAAA" not in text and "api_key" not in text
    assert exported["routes"]["completion"] == {"model": "decl-llama", "fallbacks": []}
    reloaded = yaml.safe_load(text)
    assert await apply(state.pool, state.ring, reloaded, env={}) == []
