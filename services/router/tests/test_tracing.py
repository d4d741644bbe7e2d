"""Tracing switches (off by default, costing nothing) and the spool keeping trace headers.

The trace itself (router → upstream → Kafka → metering) is tests/tracing/.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from turnout_router.usage import Spool

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _run(code: str, tmp_path: Path, **env: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TURNOUT_"))}
    clean["TURNOUT_STATE_DIR"] = str(tmp_path)
    subprocess.run([sys.executable, "-c", code], check=True, env=clean | env, timeout=60)


def test_off_by_default_and_opentelemetry_is_never_imported(tmp_path: Path) -> None:
    _run(
        "import sys\n"
        "from turnout_router.app import RouterApp\n"
        "app = RouterApp()\n"
        "assert app.tracing is None\n"
        "heavy = [m for m in sys.modules if m.startswith('opentelemetry')]\n"
        "assert not heavy, heavy\n",
        tmp_path,
    )


def test_the_environment_turns_it_on(tmp_path: Path) -> None:
    """Which variables do is in libs/common/tests/test_telemetry.py."""
    _run(
        "from turnout_router.app import RouterApp\n"
        "app = RouterApp()\n"
        "assert app.tracing is not None\n"
        "app.tracing.shutdown()\n",
        tmp_path,
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="router-under-test",
    )


def test_spool_keeps_each_records_trace_headers(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    records = [
        (b"req-1", b'{"request_id":"req-1"}', {"traceparent": TRACEPARENT}),
        (b"req-2", b'{"request_id":"req-2"}', None),
    ]
    path = spool.write(records)
    assert Spool.read(path) == records


def test_a_tracing_failure_never_loses_the_usage_record(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from turnout_router.context import RequestContext
    from turnout_router.tracing import RouterTracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = RouterTracing(provider, usage_topic="turnout.usage.v1")
    ctx = RequestContext("req_x", "chat", "/v1/chat/completions", 0.0, 0.0)
    tracing.begin(ctx, {"traceparent": TRACEPARENT})
    assert ctx.trace is not None
    with caplog.at_level(logging.ERROR, logger="turnout_router.tracing"):
        ctx.trace.finish(ctx, {"request_id": "req_x"})  # not a real record: logged, not raised
    assert "could not finish" in caplog.text
    (server,) = exporter.get_finished_spans()  # ended all the same
    assert server.kind is SpanKind.SERVER and server.parent is not None
