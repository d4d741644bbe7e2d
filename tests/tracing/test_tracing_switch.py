"""The admin-plane services' tracing switch: off by default (no SDK, no spans, no trace
headers on outbox rows), on by ``tracer_provider`` or the ``OTEL_*`` environment, and then
one SERVER span per request even with a global tracer provider (FastAPI's own stay off).

Each case runs in a fresh interpreter, so that what is imported, and the process-wide tracer
provider, are its own. The router's switch is services/router/tests/test_tracing.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from turnout_common.settings import KafkaSettings
from turnout_common.testing.plugin import kafka_env

APPS = """
from turnout_common.crypto import generate_key
from turnout_common.settings import CommonSettings
from turnout_config_api.app import create_app as config_api
from turnout_config_api.settings import ConfigApiSettings
from turnout_health.app import create_app as health_worker
from turnout_metering.app import create_app as metering
from turnout_metering.settings import MeteringSettings

def apps(**kw):
    return {
        "config-api": config_api(ConfigApiSettings(encryption_keys=generate_key()), **kw),
        "health-worker": health_worker(CommonSettings(service_name="health-worker"), **kw),
        "metering": metering(MeteringSettings(), **kw),
    }

def traced(app):
    return [m.cls.__name__ for m in app.user_middleware if m.cls.__name__ == "TracingMiddleware"]
"""


def _run(code: str, tmp_path: Path, **env: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TURNOUT_"))}
    clean["TURNOUT_STATE_DIR"] = str(tmp_path)
    script = APPS + textwrap.dedent(code)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=clean | env,
        timeout=120,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_off_by_default_nothing_is_loaded_or_carried(
    tmp_path: Path, database_url: str, kafka_settings: KafkaSettings
) -> None:
    """config-api really runs (migrations, outbox relay, health follower) and takes a write:
    the outbox row has no trace headers and neither the SDK nor Turnout's tracing code was
    imported. (FastAPI itself imports the OpenTelemetry API, so that one is loaded anyway.)"""
    _run(
        """
        import asyncio, sys
        import httpx
        from turnout_common.telemetry import message_trace_headers

        TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        OURS = ("turnout_common.tracing", "turnout_health.tracing", "turnout_metering.tracing")

        built = apps()
        assert not any(traced(a) for a in built.values()), built
        assert built["metering"].state.runtime.tracing is None
        assert message_trace_headers("turnout.config.v1") is None

        async def write() -> None:
            app = built["config-api"]
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
                    r = await c.post(
                        "/api/v1/providers",
                        json={"name": "untraced-switch-test", "kind": "groq"},
                        headers={
                            "Authorization": "Bearer switch-admin",
                            "traceparent": TRACEPARENT,
                        },
                    )
                    assert r.status_code == 201, r.text
                pool = app.state.config_api.pool
                row = await pool.fetchrow(
                    "SELECT headers FROM config.outbox WHERE key = $1",
                    ("provider:" + r.json()["id"]).encode(),
                )
                assert row is not None and row["headers"] == {}, row

        asyncio.run(write())
        loaded = [m for m in sys.modules if m.startswith(("opentelemetry.sdk", *OURS))]
        assert not loaded, loaded
        """,
        tmp_path,
        TURNOUT_DATABASE_URL=database_url,
        TURNOUT_ADMIN_TOKEN="switch-admin",
        **kafka_env(kafka_settings.bootstrap),
    )


def test_the_environment_turns_it_on(tmp_path: Path) -> None:
    """Which variables do is in libs/common/tests/test_telemetry.py."""
    _run(
        """
        built = apps()
        assert all(traced(a) for a in built.values()), built
        assert built["metering"].state.runtime.tracing is not None
        """,
        tmp_path,
        OTEL_TRACES_EXPORTER="console",
    )


def test_one_server_span_per_request_with_a_global_provider(tmp_path: Path) -> None:
    """A global tracer provider would switch FastAPI's own request spans on too."""
    _run(
        """
        import asyncio
        import httpx
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

        async def get(app, path):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as c:
                return (await c.get(path)).status_code

        async def main():
            built = apps(tracer_provider=provider)
            for name, app in built.items():
                assert await get(app, "/nowhere") == 404
            # a route of an included router, before start-up: 503 from its dependency
            assert await get(built["health-worker"], "/api/v1/health/providers") == 503

        asyncio.run(main())
        spans = exporter.get_finished_spans()
        assert [s.name for s in spans] == ["GET"] * 3 + ["GET /api/v1/health/providers"], spans
        assert all(s.instrumentation_scope.name != "fastapi" for s in spans)
        assert spans[-1].attributes["http.route"] == "/api/v1/health/providers"
        assert spans[-1].status.status_code.name == "ERROR"
        """,
        tmp_path,
    )
