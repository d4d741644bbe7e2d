"""Table of ``bench/run_limits.sh``: req/s and p50 per stage and concurrency, with the ratios
redis/local and redis/none and the p50 Redis adds; writes the Markdown report."""

from __future__ import annotations

import argparse
from pathlib import Path

STAGES = ("none", "local", "redis")
TARGET_LOSS, TARGET_ADDED_MS = 0.10, 0.15  # issue 19 item 3


def parse(path: Path) -> tuple[dict[tuple[str, int], dict[str, str]], dict[str, str]]:
    rows: dict[tuple[str, int], dict[str, str]] = {}
    meta: dict[str, str] = {}
    for line in path.read_text().splitlines():
        target, kind, rest = line.split("\t", 2)
        kv = dict(p.split("=", 1) for p in rest.split() if "=" in p)
        if kind == "wrk":
            rows[(target, int(kv["conc"]))] = kv
        elif kind == "meta":
            meta[target] = (meta.get(target, "") + " " + rest).strip()
    return rows, meta


def table(rows: dict[tuple[str, int], dict[str, str]]) -> list[str]:
    concs = sorted({c for _, c in rows})
    out = [
        "| c | none req/s | local req/s | redis req/s | redis/local | redis/none "
        "| none p50 | local p50 | redis p50 | p50 added by Redis (vs local) "
        "| router CPU µs/req none/local/redis | other CPU % |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in concs:
        r = {s: rows.get((s, c)) for s in STAGES}
        rps = {s: float(v["rps"]) if v else None for s, v in r.items()}
        p50 = {s: float(v["p50_ms"]) if v else None for s, v in r.items()}

        def ratio(a: str, b: str, rps: dict[str, float | None] = rps) -> str:
            x, y = rps[a], rps[b]
            return f"{x / y:.3f}" if x and y else "-"

        added = (
            f"{p50['redis'] - p50['local']:+.3f} ms"
            if p50["redis"] is not None and p50["local"] is not None
            else "-"
        )
        other = "/".join(v["other_cpu"] if v else "-" for v in r.values())
        cpu_us = "/".join(
            f"{float(v['cpu']) / float(v['rps']) * 1e4:.0f}" if v and float(v["rps"]) else "-"
            for v in r.values()
        )
        cells = [str(c)]
        cells += [f"{rps[s]:.0f}" if rps[s] else "-" for s in STAGES]
        cells += [ratio("redis", "local"), ratio("redis", "none")]
        cells += [f"{p50[s]:.2f} ms" if p50[s] is not None else "-" for s in STAGES]
        cells += [added, cpu_us, other]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--md", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--command", required=True)
    args = ap.parse_args()
    rows, meta = parse(Path(args.results))
    lines = table(rows)
    print("\n".join(lines))
    for target, m in meta.items():
        print(f"{target}: {m}")
    md = [
        "# Shared limits' cost (issue 19 item 3)",
        "",
        f"`{args.command}` on this project's 2-core VM, {args.date}, one run: the same router "
        "(core 1) and load (wrk, core 0), non-streaming chat against the mock without delay; "
        "`none` = a key without limits or budget, `local` = rpm/tpm limits on the key and a "
        "budget on its user counted in the router, `redis` = the same in Redis "
        "(`TURNOUT_REDIS_URL`: a redis-server of the run's own, memory only, on core 0). "
        f"Targets: at most {TARGET_LOSS:.0%} fewer req/s, at most {TARGET_ADDED_MS} ms added p50.",
        "",
        *lines,
        "",
        *(f"- {t}: {m}" for t, m in meta.items()),
        "",
    ]
    out = Path(args.md)
    kept = out.read_text().partition("\n## Reading it")[1:] if out.exists() else ("", "")
    out.write_text("\n".join(md) + "".join(kept))


if __name__ == "__main__":
    main()
