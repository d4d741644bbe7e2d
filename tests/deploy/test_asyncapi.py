"""The committed AsyncAPI document matches the event models (regenerated in memory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from turnout_common import events, topics

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi" / "turnout.yaml"


@pytest.fixture(scope="module")
def gen(load_file: Callable[[str], ModuleType]) -> ModuleType:
    return load_file("scripts/gen_asyncapi.py")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_committed_document_is_up_to_date(gen: ModuleType) -> None:
    assert COMMITTED.read_text() == gen.render(), (
        "docs/asyncapi/turnout.yaml is stale: run `uv run python scripts/gen_asyncapi.py`"
    )


def test_check_mode_fails_on_a_stale_file(gen: ModuleType, tmp_path: Path) -> None:
    stale = tmp_path / "turnout.yaml"
    stale.write_text(COMMITTED.read_text().replace("request_id", "req_id"))
    assert gen.main(["--check", "--output", str(stale)]) == 1
    assert gen.main(["--output", str(stale)]) == 0
    assert gen.main(["--check", "--output", str(stale)]) == 0


def test_every_topic_has_a_producer_and_its_payload_schema() -> None:
    doc = yaml.safe_load(COMMITTED.read_text())
    assert doc["asyncapi"] == "3.0.0"
    sent = {
        _resolve(doc, op["channel"]["$ref"])["address"]
        for op in doc["operations"].values()
        if op["action"] == "send"
    }
    assert sent == {t.name for t in topics.ALL_TOPICS}
    schemas = doc["components"]["schemas"]
    for model in (
        events.ConfigEvent,
        events.HealthEvent,
        events.UsageEvent,
        events.CreditEvent,
        events.BillingEvent,
    ):
        wire = model.model_json_schema(mode="serialization")
        assert set(schemas[model.__name__]["properties"]) == set(wire["properties"])
    # money travels as a decimal string, never a float
    assert schemas["UsageEvent"]["properties"]["cost_usd"]["type"] == "string"
    # every message documents the W3C trace headers it may carry (docs/CONTRACTS.md)
    for message in doc["components"]["messages"].values():
        assert set(message["headers"]["properties"]) == {"traceparent", "tracestate"}


def test_every_reference_resolves() -> None:
    doc = yaml.safe_load(COMMITTED.read_text())
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert _resolve(doc, ref) is not None, ref
