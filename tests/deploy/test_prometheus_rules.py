"""deploy/prometheus/turnout-alerts.yaml checked offline (promtool is not installed in CI):
the file parses as a Prometheus rule file, every rule has what Alertmanager routes on, and
every metric and label its expressions use is one the services really export (their
prometheus_client registrations, what /metrics serves)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

# importing them registers every service's series in the default registry
SERVICES = ("turnout_common.metrics", "turnout_router.metrics", "turnout_health.metrics",
            "turnout_metering.metrics")  # fmt: skip
for _module in SERVICES:
    importlib.import_module(_module)

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "turnout-alerts.yaml"
_SELECTOR = re.compile(r"\b(turnout_[a-z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_DURATION = re.compile(r"^\d+[smhd]$")
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def exported() -> dict[str, set[str]]:
    """Every series name the registry serves, with its label names."""
    found: dict[str, set[str]] = {}
    collectors = REGISTRY._collector_to_names
    for collector, names in collectors.items():
        labels = set(getattr(collector, "_labelnames", ()))
        for name in names:
            found[name] = labels
    return found


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_rule_file_is_well_formed() -> None:
    doc = yaml.safe_load(RULES.read_text())
    names = [g["name"] for g in doc["groups"]]
    assert len(names) == len(set(names))
    alerts = [r["alert"] for r in rules()]
    assert len(alerts) == len(set(alerts))
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert rule["annotations"]["summary"]
        assert "for" not in rule or _DURATION.match(rule["for"])
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")


def problems_of(
    rule_list: list[dict[str, Any]], series: dict[str, set[str]]
) -> tuple[list[str], set[str]]:
    """What the expressions use that is not exported, and the metrics they do use."""
    problems: list[str] = []
    covered: set[str] = set()
    for rule in rule_list:
        expr = rule["expr"]
        used: list[str] = []
        for name, selector in _SELECTOR.findall(expr):
            base = next((name[: -len(s)] for s in _SUFFIXES if name.endswith(s)), name)
            known = name if name in series else base if base in series else None
            if known is None:
                problems.append(f"{rule['alert']}: no metric {name!r}")
                continue
            used.append(known)
            for label in _MATCHER.findall(selector or ""):
                if label[0] not in series[known]:
                    problems.append(f"{rule['alert']}: {name} has no label {label[0]!r}")
        for group in _BY.findall(expr):
            for label in filter(None, (s.strip() for s in group.split(","))):
                if not any(label in series[n] for n in used):
                    problems.append(f"{rule['alert']}: no metric of it has label {label!r}")
        if not used:
            problems.append(f"{rule['alert']} uses none of our metrics")
        covered.update(used)
    return problems, covered


def test_every_metric_and_label_is_exported() -> None:
    problems, covered = problems_of(rules(), exported())
    assert not problems, problems
    # the conditions of turnout.alerts.v1, each covered by a rule
    for needed in ("turnout_metering_budget_subjects", "turnout_health_provider_status",
                   "turnout_health_circuit_state", "turnout_consumer_lag"):  # fmt: skip
        assert needed in covered


def test_the_check_catches_what_promtool_would_not_know() -> None:
    bad = [
        {"alert": "A", "expr": "turnout_metering_budget_subject > 0"},  # a typo
        {"alert": "B", "expr": 'turnout_consumer_lag{servise="metering"} > 1'},  # a label typo
        {"alert": "C", "expr": "sum by (tenant) (turnout_consumer_lag) > 1"},
        {"alert": "D", "expr": "up == 0"},
    ]
    problems, _ = problems_of(bad, exported())
    assert [p.split(":")[0].split(" ")[0] for p in problems] == ["A", "A", "B", "C", "D"]
