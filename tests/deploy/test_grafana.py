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


def queried_series(dashboard: dict[str, Any]) -> set[str]:
    """Every series name the dashboard's queries and variables select (labels stripped)."""
    queries = exprs(dashboard["panels"])
    queries += [str(v.get("definition", "")) for v in dashboard["templating"]["list"]]
    names: set[str] = set()
    for query in queries:
        query = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\bby\s*\([^)]*\)", "", query)
        query = re.sub(r"label_values\(\s*([a-z0-9_:]+)\s*,[^)]*\)", r"\1", query)
        names |= set(METRIC.findall(query))
    return names


class _Proto:
    """Just enough of Granian's RSGI protocol for a GET."""

    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    def response_bytes(self, status: int, _headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.body = status, body


class _Scope:
    def __init__(self, path: str) -> None:
        self.path, self.method, self.headers = path, "GET", {}


async def _scrape_router() -> str:
    from turnout_router.app import RouterApp
    from turnout_router.settings import RouterSettings

    # with a shared limits store configured (never connected here): its two series exist then
    app = RouterApp(RouterSettings(redis_url="redis://127.0.0.1:6379/15"))
    proto = _Proto()
    await app.__rsgi__(_Scope("/metrics"), proto)
    assert proto.status == 200
    return proto.body.decode()


def _scrape_fastapi_services() -> dict[str, str]:
    from fastapi.testclient import TestClient

    from turnout_common.crypto import generate_key
    from turnout_common.settings import CommonSettings
    from turnout_config_api.app import create_app as config_api
    from turnout_config_api.settings import ConfigApiSettings
    from turnout_health.app import create_app as health_worker
    from turnout_metering.app import create_app as metering
    from turnout_metering.settings import MeteringSettings

    apps = {
        "config-api": config_api(ConfigApiSettings(encryption_keys=generate_key())),
        "health-worker": health_worker(CommonSettings(service_name="health-worker")),
        "metering": metering(MeteringSettings()),
    }
    scraped = {}
    for name, app in apps.items():  # no lifespan: nothing connects to a database or broker
        client = TestClient(app)
        assert client.get("/healthz").status_code == 200  # counted by turnout_http_*
        resp = client.get("/metrics")
        assert resp.status_code == 200, name
        scraped[name] = resp.text
    return scraped


def exported_series(text: str) -> set[str]:
    """Every series name a scrape declares, samples or not (a family may be empty yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {"counter": ("_total",), "histogram": SUFFIXES, "summary": ("_count", "_sum")}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {family.name + s for s in suffixes.get(family.type, ())}
        names |= {s.name for s in family.samples}
    return names


async def test_every_dashboard_metric_is_exported_by_a_service() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    wanted = queried_series(dashboard)
    assert "gen_ai_server_request_duration_seconds_bucket" in wanted
    scrapes = {"router": await _scrape_router(), **_scrape_fastapi_services()}
    exported = {name: exported_series(text) for name, text in scrapes.items()}
    everything = set().union(*exported.values())
    assert not wanted - everything, f"queried but exported by no service: {wanted - everything}"
    for service, names in exported.items():  # every service serves the shared HTTP series
        assert "turnout_http_requests_total" in names, service
    assert 'service="router"' not in scrapes["router"]  # nothing observed yet
    assert 'service="metering"' in scrapes["metering"]
