"""The Grafana dashboard is valid JSON and uses only the metric names deploy/README.md lists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "turnout.json"
METRIC = re.compile(r"\b((?:turnout|gen_ai)_[a-z0-9_]+)")
SUFFIXES = ("_bucket", "_count", "_sum")


def documented_metrics() -> set[str]:
    text = (ROOT / "deploy" / "README.md").read_text()
    return set(re.findall(r"^\| `((?:turnout|gen_ai)_[a-z0-9_]+)` \|", text, re.M))


def exprs(panels: list[dict[str, Any]]) -> list[str]:
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def base_name(series: str) -> str:
    for suffix in SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def test_dashboard_queries_use_documented_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "Turnout"
    queries = exprs(dashboard["panels"])
    assert len(queries) >= 12
    documented = documented_metrics()
    assert len(documented) >= 10
    used = {base_name(m) for q in queries for m in METRIC.findall(q)}
    # label names such as gen_ai_request_model also match the pattern: keep metric names
    used -= {"gen_ai_request_model", "gen_ai_provider_name", "gen_ai_token_type"}
    assert used <= documented, f"undocumented metrics: {used - documented}"
    assert documented <= used | {"turnout_http_request_duration_seconds"}, documented - used
    for query in queries:
        assert query.count("(") == query.count(")"), query
        assert query.count("{") == query.count("}"), query


def test_panels_do_not_overlap_and_have_unique_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
