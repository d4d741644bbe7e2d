"""Console render timings at scale (issue 17): every list page of the console, rendered by a
running stack (`turnout up`: the console and the services it calls, PostgreSQL, a Tansu
broker) holding 10,000 providers, models and users, 10,000 audit entries and a million usage
rows. Sequential requests per page after a warm-up; p50 / p95 / max of the whole answer
(console → services → PostgreSQL → HTML) as a client sees it. Writes bench/RESULTS-console.md.

    uv run python bench/console_render.py        # N=10000 USAGE_ROWS=1000000 REPEAT=40

The rows are written with SQL before the stack starts (seeding 10,000 of each through the
APIs would take longer than the measurement and measure the seeding); the services then
bootstrap from them as from any database. Knobs: N, USAGE_ROWS, REPEAT, PG_DSN, RUN_DIR.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from turnout_common.crypto import generate_key
from turnout_common.devinfra import free_port
from turnout_metering.usage.latency import bucket_index_sql, histogram_sql, summed_histogram_sql

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get("N", "10000"))
USAGE_ROWS = int(os.environ.get("USAGE_ROWS", "1000000"))
REPEAT = int(os.environ.get("REPEAT", "40"))
PG_DSN = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RUN_DIR = Path(os.environ.get("RUN_DIR", f"/tmp/turnout-bench/console-{os.getpid()}"))
GOAL_MS = 100.0

ADMIN_PAGES = [
    ("/providers", "Providers, page 1"),
    (f"/providers?page={N // 10}", "Providers, last page"),
    ("/providers?search=bench-p09&sort=-models", "Providers, search + sort by models"),
    ("/models", "Models, page 1"),
    (f"/models?sort=-price&page={N // 20}", "Models, sorted by price, page N/20"),
    ("/routes", "Routes"),
    ("/rules", "Routing rules"),
    ("/users", "Users, page 1 (+ each user's credits)"),
    (f"/users?page={N // 10}", "Users, last page"),
    ("/tiers", "Tiers"),
    ("/health", "Health, page 1 (+ 20 probe strips)"),
    ("/usage", "Usage, all time (chart, sums, records)"),
    ("/usage?user_id=bench-u42", "Usage, one user"),
    ("/audit", "Audit log"),
    ("/lab", "Testing lab (admin: every lab run)"),
    ("/catalog", "Model catalog (admin)"),
]
USER_PAGES = [
    ("/me", "My usage and keys"),
    ("/catalog", "Model catalog (user)"),
    ("/me/provider-keys", "My provider keys"),
    ("/lab", "Testing lab (user)"),
]


def with_db(dsn: str, name: str) -> str:
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


SEED_CONFIG = """
INSERT INTO config.providers (id, name, kind, base_url, enabled, revision)
SELECT 'bp' || i, 'bench-p' || lpad(i::text, 5, '0'), 'vllm', 'http://127.0.0.1:9/v1',
       i <= 10, nextval('config.config_revision')
FROM generate_series(1, $1) i;
INSERT INTO config.models (id, name, provider_id, upstream_model, context_window,
                           input_price_per_mtok, output_price_per_mtok, revision)
SELECT 'bm' || i, 'bench-m' || lpad(i::text, 5, '0'), 'bp' || i, 'm', 4096 * (1 + i % 32),
       (i % 97) / 10.0, (i % 89) / 5.0, nextval('config.config_revision')
FROM generate_series(1, $1) i;
INSERT INTO config.users (id, tier, monthly_budget_usd, revision)
SELECT 'bench-u' || i, 'free', CASE WHEN i % 3 = 0 THEN 10 END, nextval('config.config_revision')
FROM generate_series(1, $1) i;
INSERT INTO config.audit_log (actor, action, entity, entity_id, after, revision)
SELECT 'bench', 'create', 'provider', 'bp' || i,
       jsonb_build_object('name', 'bench-p' || lpad(i::text, 5, '0'), 'kind', 'vllm'), i
FROM generate_series(1, $1) i;
"""


USAGE_LOG = """
INSERT INTO metering.usage_log (request_id, event_id, started_at, period, user_id, key_id,
    purpose, requested_model, model, upstream_model, provider_id, provider, input_tokens,
    output_tokens, cached_tokens, cost_usd, billed_usd, latency_ms, ttft_ms, status, outcome,
    source)
SELECT 'breq' || i, gen_random_uuid(), t, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM'),
       'bench-u' || (i % $2), 'bk' || (i % $2), 'chat', 'auto',
       'bench-m' || lpad((1 + i % $2 % 1000)::text, 5, '0'), 'm', 'bp' || (1 + i % $2 % 1000),
       'bench-p' || lpad((1 + i % $2 % 1000)::text, 5, '0'), 20 + i % 50, 80 + i % 200, 0,
       ((20 + i % 50) * 0.2 + (80 + i % 200) * 0.6) / 1000000.0,
       ((20 + i % 50) * 0.2 + (80 + i % 200) * 0.6) / 1000000.0,
       50 + i % 400, 10 + i % 40, 200, 'success', CASE WHEN i % 10 = 0 THEN 'lab' ELSE 'api' END
FROM (SELECT i, now() - make_interval(secs => (i % 259200)) AS t
      FROM generate_series(1, $1) i) g
"""
"""``USAGE_ROWS`` requests over the last 3 days: user i % N, one of 1,000 models each user
sticks to, every 10th from the lab."""


def usage_daily_sql() -> str:
    """usage_daily rebuilt from the seeded rows, as ingest would have built it."""
    return f"""
INSERT INTO metering.usage_daily (day, user_id, key_id, model, provider_id, provider, source,
    outcome, requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd,
    billed_usd, latency_sum_ms, lat_hist)
SELECT (started_at AT TIME ZONE 'UTC')::date, user_id, key_id, model, provider_id, provider,
       source, outcome, count(*), 0, sum(input_tokens), sum(output_tokens), 0, sum(cost_usd),
       sum(billed_usd), sum(latency_ms), {histogram_sql("b")}
FROM (SELECT *, {bucket_index_sql("latency_ms")} AS b FROM metering.usage_log) n
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""


USAGE_DAILY_MODELS = f"""
INSERT INTO metering.usage_daily_models (day, model, provider_id, provider, source, outcome,
    requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd, billed_usd,
    latency_sum_ms, lat_hist)
SELECT day, model, provider_id, provider, source, outcome, sum(requests), sum(errors),
       sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost_usd),
       sum(billed_usd), sum(latency_sum_ms),
       {summed_histogram_sql()}
FROM metering.usage_daily
GROUP BY day, model, provider_id, provider, source, outcome
"""
"""The rollup without users and keys (metering migration 0011), as that migration fills it."""


async def seed(dsn: str) -> dict[str, float]:
    took: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        for stmt in filter(str.strip, SEED_CONFIG.split(";")):
            await conn.execute(stmt, N)
        took["config rows"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.execute(USAGE_LOG, USAGE_ROWS, N)
            await conn.execute(usage_daily_sql())
            if await conn.fetchval("SELECT to_regclass('metering.usage_daily_models')"):
                await conn.execute(USAGE_DAILY_MODELS)
        await conn.execute("ANALYZE")
        took["usage rows"] = time.perf_counter() - t0
    finally:
        await conn.close()
    return took


async def database(op: str, name: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        if op == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def sign_in(base: str, token: str, timeout: float = 60) -> httpx.Client:
    deadline = time.monotonic() + timeout
    while True:
        client = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
        resp = client.post(
            "/login", data={"token": token, "csrf_token": csrf(client.get("/login").text)}
        )
        if resp.status_code == 200 and "Sign out" in resp.text:
            return client
        client.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"could not sign in: {resp.status_code} {resp.text[:300]}")
        time.sleep(1)


def measure(client: httpx.Client, path: str) -> dict[str, float]:
    for _ in range(3):  # warm-up
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200 and "Sign out" in resp.text, (path, resp.status_code)
    cuts = quantiles(times, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "max": max(times), "bytes": len(resp.content)}


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    load = os.getloadavg()
    return f"{os.cpu_count()} cores ({cpu}), load average {load[0]:.2f} at the start"


def main() -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    name = f"turnout_bench_console_{os.getpid()}"
    dsn = with_db(PG_DSN, name)
    asyncio.run(database("create", name))
    proc = None
    started = datetime.now(UTC)
    load_at_start = machine()
    try:
        subprocess.run(
            [sys.executable, "-m", "turnout", "migrate", "--database-url", dsn],
            check=True, capture_output=True,
        )  # fmt: skip
        took = asyncio.run(seed(dsn))
        print(f"seeded in {took}", flush=True)
        admin = "tadm-bench-" + secrets.token_hex(8)
        ports = {
            f"TURNOUT_{k}_PORT": str(free_port())
            for k in ("ROUTER", "CONFIG_API", "HEALTH", "METERING", "CONSOLE", "UP_KAFKA")
        }
        env = {
            **os.environ,
            **ports,
            "TURNOUT_DATABASE_URL": dsn,
            "TURNOUT_CONFIG_URL": f"http://127.0.0.1:{ports['TURNOUT_CONFIG_API_PORT']}",
            "TURNOUT_ENCRYPTION_KEYS": generate_key(),
            "TURNOUT_ADMIN_TOKEN": admin,
            "TURNOUT_UP_TIMEOUT": "240",
            "TURNOUT_SNAPSHOT_TIMEOUT_S": "180",  # 30,000 entities on a loaded 2-core VM
        }
        env.pop("TURNOUT_KAFKA_BOOTSTRAP", None)
        log = open(RUN_DIR / "up.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "turnout", "up", "--state-dir", str(RUN_DIR / "state")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        up = RUN_DIR / "state" / "up.json"
        deadline = time.monotonic() + 300
        while not up.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((RUN_DIR / "up.log").read_text()[-3000:])
            time.sleep(0.5)
        info = json.loads(up.read_text())
        headers = {"Authorization": f"Bearer {admin}"}
        key = httpx.post(
            info["config_url"] + "/api/v1/keys",
            headers=headers,
            json={"user_id": "bench-u42", "name": "bench"},
            timeout=30,
        ).json()["key"]
        rows: list[tuple[str, str, str, dict[str, float]]] = []
        for who, token, pages in (("admin", admin, ADMIN_PAGES), ("user", key, USER_PAGES)):
            client = sign_in(info["console_url"], token)
            try:
                for path, label in pages:
                    rows.append((who, label, path, measure(client, path)))
                    print(rows[-1], flush=True)
            finally:
                client.close()
        write(rows, took, started, load_at_start)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        asyncio.run(database("drop", name))


def write(
    rows: list[tuple[str, str, str, dict[str, float]]],
    took: dict[str, float],
    started: datetime,
    load: str,
) -> None:
    worst = max(r[3]["p95"] for r in rows)
    lines = [
        "# Console render timings at scale (issue 17)",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on {load}, shared with other agents' work "
        "(absolute times drift with that load; compare pages with each other).",
        "",
        f"Command: `uv run python bench/console_render.py` (N={N}, USAGE_ROWS={USAGE_ROWS}, "
        f"REPEAT={REPEAT}). The database holds {N:,} providers (10 enabled), {N:,} models, "
        f"{N:,} users, {N:,} audit entries and {USAGE_ROWS:,} usage rows over 3 days (every "
        "10th from the lab), written with SQL before `turnout up` started (seeding took "
        + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
        + "). Each page: 3 warm-up requests, then "
        f"{REPEAT} sequential GETs by a signed-in client; time = the whole answer (console → "
        "services → PostgreSQL → HTML). Goal: ≤ 100 ms p95 per page.",
        "",
        "| who | page | path | p50 ms | p95 ms | max ms | HTML KB | p95 ≤ 100 ms |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for who, label, path, m in rows:
        ok = "yes" if m["p95"] <= GOAL_MS else "**no**"
        lines.append(
            f"| {who} | {label} | `{path}` | {m['p50']:.1f} | {m['p95']:.1f} | {m['max']:.1f} "
            f"| {m['bytes'] / 1024:.0f} | {ok} |"
        )
    over = [r for r in rows if r[3]["p95"] > GOAL_MS]
    lines += [
        "",
        f"Worst p95: {worst:.1f} ms. Pages over the goal: "
        + (", ".join(f"{r[1]} ({r[3]['p95']:.0f} ms)" for r in over) or "none")
        + ".",
        "",
    ]
    out = ROOT / "bench" / "RESULTS-console.md"
    keep = ""
    if out.exists() and "\n## Notes" in out.read_text():
        keep = out.read_text()[out.read_text().index("\n## Notes") :]
    out.write_text("\n".join(lines) + keep)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
