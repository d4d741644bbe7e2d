"""When tracing is on, and which exporters the standard OTEL_* variables choose."""

from __future__ import annotations

import pytest

from turnout_common.settings import CommonSettings
from turnout_common.telemetry import setup_tracing, trace_exporter_names

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    ("explicit", "env", "on"),
    [
        (False, {}, False),
        (True, {}, True),
        (False, ENDPOINT, True),
        (False, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        (False, {"OTEL_TRACES_EXPORTER": "console"}, True),
        (False, ENDPOINT | {"OTEL_SDK_DISABLED": "true"}, False),
        (True, {"OTEL_SDK_DISABLED": "TRUE"}, False),
        (False, ENDPOINT | {"OTEL_TRACES_EXPORTER": "none"}, False),
        (False, {"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}, False),
    ],
)
def test_tracing_requested(explicit: bool, env: dict[str, str], on: bool) -> None:
    assert CommonSettings(otel_enabled=explicit).tracing_requested(env) is on


def test_exporters_follow_otel_traces_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert trace_exporter_names() == ["otlp"]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", " Console, otlp ,none")
    assert trace_exporter_names() == ["console", "otlp"]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert trace_exporter_names() == []


def test_setup_tracing_names_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    provider = setup_tracing("turnout-router", set_global=False)
    assert provider.resource.attributes["service.name"] == "turnout-router"
    provider.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge-router")
    provider = setup_tracing("turnout-router", set_global=False)
    assert provider.resource.attributes["service.name"] == "edge-router"
    provider.shutdown()
