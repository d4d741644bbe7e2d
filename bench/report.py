#!/usr/bin/env python3
"""Turn bench/run.sh's raw rows into one comparison table (stdout) and bench/RESULTS.md.

  report.py RESULTS_TSV [--md PATH] [--date D] [--command CMD]

Rows are ``target<TAB>kind<TAB>k=v k=v ...`` with kind ``wrk`` (one measured wrk run),
``ttft`` (one TTFT probe) or ``meta`` (start-up time, RSS, version, errors).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TARGETS = ("direct", "turnout", "litellm")
Row = dict[str, str]


@dataclass
class Results:
    wrk: dict[tuple[str, str, int], Row] = field(default_factory=dict)
    ttft: dict[tuple[str, int], Row] = field(default_factory=dict)
    meta: dict[str, Row] = field(default_factory=dict)


def parse(text: str) -> Results:
    res = Results()
    for line in text.splitlines():
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 3:
            continue
        target, kind, kv = parts
        row = dict(item.split("=", 1) for item in kv.split() if "=" in item)
        if kind == "wrk":
            res.wrk[(target, row["scenario"], int(row["conc"]))] = row
        elif kind == "ttft":
            res.ttft[(target, int(row["c"]))] = row
        elif kind == "meta":
            res.meta.setdefault(target, {}).update(row)
    return res


KEEP_FROM = "## Profile findings"
"""RESULTS.md keeps everything from this heading on when it is re-generated."""
LIMITS = {"other_max_pct": 25.0}  # runs with more foreign CPU load than this are flagged "*"


def num(row: Row | None, key: str) -> float | None:
    if row is None or key not in row:
        return None
    if key.endswith("_ms") and row.get("reqs") == "0":
        return None  # no request completed: percentiles are meaningless
    try:
        return float(row[key])
    except ValueError:
        return None


def dirty(*rows: Row | None) -> bool:
    """True if any of the runs behind a cell had too much foreign CPU load."""
    return any((num(r, "other_cpu") or 0) > LIMITS["other_max_pct"] for r in rows)


def fmt(v: float | None, prec: int = 1, sign: bool = False) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        prec = 0
    s = f"{v:+,.{prec}f}" if sign else f"{v:,.{prec}f}"
    return s


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return f"{r:,.{0 if r >= 100 else 1 if r >= 10 else 2}f}x"


Getter = Callable[[str], float | None]
Sources = Callable[[str], list[Row | None]]


def table(res: Results) -> list[str]:
    out = [
        "| metric | direct (limit) | Turnout | LiteLLM | Turnout/LiteLLM | Turnout/direct |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def line(
        label: str, get: Getter, prec: int = 1, sign: bool = False, src: Sources | None = None
    ) -> None:
        vals = {t: get(t) for t in TARGETS}
        cells = [
            fmt(vals[t], prec, sign and t != "direct")
            + ("*" if src and vals[t] is not None and dirty(*src(t)) else "")
            for t in TARGETS
        ]
        out.append(
            f"| {label} | {' | '.join(cells)} | {ratio(vals['turnout'], vals['litellm'])} | "
            f"{ratio(vals['turnout'], vals['direct'])} |"
        )

    concs = sorted({c for (_, s, c) in res.wrk if s == "chat"})
    for c in concs:
        line(f"chat req/s, c={c}", lambda t, c=c: num(res.wrk.get((t, "chat", c)), "rps"),
             src=lambda t, c=c: [res.wrk.get((t, "chat", c))])  # fmt: skip
    for c in concs:
        out.append(_percentiles(res, c))
    for c in sorted({c for (_, s, c) in res.wrk if s == "stream"}):
        line(f"stream req/s, c={c}", lambda t, c=c: num(res.wrk.get((t, "stream", c)), "rps"),
             src=lambda t, c=c: [res.wrk.get((t, "stream", c))])  # fmt: skip
    for c in sorted({c for (_, s, c) in res.wrk if s == "delay50"}):
        base = num(res.wrk.get(("direct", "delay50", c)), "p50_ms")

        def added(t: str, c: int = c, base: float | None = base) -> float | None:
            p50 = num(res.wrk.get((t, "delay50", c)), "p50_ms")
            if t == "direct":
                return p50
            return None if p50 is None or base is None else p50 - base

        def delay_rows(t: str, c: int = c) -> list[Row | None]:
            return [res.wrk.get((t, "delay50", c)), res.wrk.get(("direct", "delay50", c))]

        line(f"added p50 ms over a 50 ms upstream, c={c} (direct: p50)", added, 2, True, delay_rows)
    for c in sorted({c for (_, c) in res.ttft}):
        base = num(res.ttft.get(("direct", c)), "ttft_p50_ms")

        def ttft(t: str, c: int = c, base: float | None = base) -> float | None:
            v = num(res.ttft.get((t, c)), "ttft_p50_ms")
            if t == "direct":
                return v
            return None if v is None or base is None else v - base

        line(f"stream TTFT added p50 ms, c={c} (direct: TTFT p50)", ttft, 2, True)
    line("gateway CPU % at c=64", lambda t: num(res.wrk.get((t, "chat", 64)), "cpu"), 0)
    line("gateway CPU µs per request, c=64", lambda t: cpu_us(res.wrk.get((t, "chat", 64))), 0)
    line("one core's capacity, req/s (1 s ÷ CPU per request)",
         lambda t: capacity(res.wrk.get((t, "chat", 64))), 0)  # fmt: skip
    line("RSS MB idle", lambda t: num(res.meta.get(t), "idle_rss_mb"), 0)
    line("RSS MB peak", lambda t: num(res.meta.get(t), "peak_rss_mb"), 0)
    line("time to ready, s", lambda t: num(res.meta.get(t), "ready_s"), 2)
    line("errors (all measured runs)", lambda t: _sum(res, t, "errors"), 0)
    line("max other CPU % (foreign load)", lambda t: _max(res, t, "other_cpu"), 0)
    return out


APIS = ("messages", "responses")
"""Turnout's other client APIs (bench/lib.sh ingress_suite), each beside chat completions."""
DOOR_BUDGET = 0.15  # issue 18: throughput and added latency within 15 % of chat completions


def doors(res: Results) -> list[str]:
    """The other client APIs beside ``/v1/chat/completions``, same run, same mocks."""
    apis = [a for a in APIS if any(t == "turnout" and s == a for (t, s, _) in res.wrk)]
    if not apis:
        return []

    def row(api: str, scen: str, c: int) -> Row | None:
        name = {"": api, "_stream": api + "_stream", "_delay50": api + "_delay50"}[scen]
        if api == "chat":
            name = {"": "chat", "_stream": "stream", "_delay50": "delay50"}[scen]
        return res.wrk.get(("turnout", name, c))

    def added(api: str, c: int) -> float | None:
        p50 = num(row(api, "_delay50", c), "p50_ms")
        base = num(res.wrk.get(("direct", "delay50", c)), "p50_ms")
        return None if p50 is None or base is None else p50 - base

    metrics: list[tuple[str, Callable[[str], float | None], bool]] = []
    for c in sorted({c for (t, s, c) in res.wrk if t == "turnout" and s in apis}):
        metrics.append((f"req/s, c={c}", lambda a, c=c: num(row(a, "", c), "rps"), True))
        metrics.append((f"CPU µs per request, c={c}", lambda a, c=c: cpu_us(row(a, "", c)), False))
    first = apis[0]
    for c in sorted({c for (t, s, c) in res.wrk if t == "turnout" and s == first + "_stream"}):
        label = f"stream req/s, c={c}"
        metrics.append((label, lambda a, c=c: num(row(a, "_stream", c), "rps"), True))
    for c in sorted({c for (t, s, c) in res.wrk if t == "turnout" and s == first + "_delay50"}):
        label = f"added p50 ms over a 50 ms upstream, c={c}"
        metrics.append((label, lambda a, c=c: added(a, c), False))
    head = " | ".join(f"/v1/{a} | {a} ÷ chat" for a in apis)
    out = [
        f"| Turnout, same run | /v1/chat/completions | {head} |",
        "|---|---:|" + "---:|---:|" * len(apis),
    ]
    for label, get, higher_better in metrics:
        chat = get("chat")
        cells = [fmt(chat, 2 if "added" in label else 1)]
        for a in apis:
            v = get(a)
            r = ratio(v, chat)
            if v is not None and chat:
                within = (
                    v >= chat * (1 - DOOR_BUDGET)
                    if higher_better
                    else (
                        v <= chat * (1 + DOOR_BUDGET) or (v - chat) < 0.1  # sub-0.1 ms: noise
                    )
                )
                r += "" if within else " (over 15 %)"
            cells += [fmt(v, 2 if "added" in label else 1), r]
        out.append(f"| {label} | {' | '.join(cells)} |")
    return out


def cpu_us(row: Row | None) -> float | None:
    """Gateway CPU time per completed request: less sensitive to foreign load than req/s."""
    cpu, rps = num(row, "cpu"), num(row, "rps")
    return None if cpu is None or not rps else cpu / 100 / rps * 1e6


def capacity(row: Row | None) -> float | None:
    us = cpu_us(row)
    return None if not us else 1e6 / us


# issue 8: (label, value getter, limit, True = at least / False = at most)
Target = tuple[str, Callable[[Results], float | None], float, bool]


def _added(res: Results, scen: str, c: int) -> float | None:
    if scen == "ttft":
        v, base = (num(res.ttft.get((t, c)), "ttft_p50_ms") for t in ("turnout", "direct"))
    else:
        v, base = (num(res.wrk.get((t, scen, c)), "p50_ms") for t in ("turnout", "direct"))
    return None if v is None or base is None else v - base


TARGETS_ISSUE8: list[Target] = [
    ("chat req/s, c=64", lambda r: num(r.wrk.get(("turnout", "chat", 64)), "rps"), 2500, True),
    ("added p50 ms, 50 ms upstream, c=1", lambda r: _added(r, "delay50", 1), 0.5, False),
    ("added p50 ms, 50 ms upstream, c=16", lambda r: _added(r, "delay50", 16), 0.5, False),
    ("stream TTFT added p50 ms, c=1", lambda r: _added(r, "ttft", 1), 1.0, False),
    ("RSS MB peak", lambda r: num(r.meta.get("turnout"), "peak_rss_mb"), 100, False),
    ("time to ready, s", lambda r: num(r.meta.get("turnout"), "ready_s"), 2.0, False),
]


def targets(res: Results) -> list[str]:
    """Turnout against issue 8's targets (one core, auth + routing + usage events on)."""
    out = ["| issue 8 target | limit | Turnout | met |", "|---|---:|---:|---|"]
    for label, get, limit, at_least in TARGETS_ISSUE8:
        v = get(res)
        ok = "-" if v is None else "yes" if (v >= limit if at_least else v <= limit) else "NO"
        cell = fmt(v, 2 if v is not None and abs(v) < 10 else 0)
        out.append(f"| {label} | {'≥' if at_least else '≤'} {limit:g} | {cell} | {ok} |")
    return out


def _percentiles(res: Results, c: int) -> str:
    cells = []
    for t in TARGETS:
        row = res.wrk.get((t, "chat", c))
        ps = [num(row, k) for k in ("p50_ms", "p90_ms", "p99_ms")]
        mark = "*" if dirty(row) else ""
        cells.append("-" if ps[0] is None else " / ".join(fmt(p, 2) for p in ps) + mark)
    p50 = {t: num(res.wrk.get((t, "chat", c)), "p50_ms") for t in TARGETS}
    return (
        f"| chat p50 / p90 / p99 ms, c={c} | {' | '.join(cells)} | "
        f"{ratio(p50['turnout'], p50['litellm'])} | {ratio(p50['turnout'], p50['direct'])} |"
    )


def _sum(res: Results, target: str, key: str) -> float | None:
    vals = [num(r, key) for (t, _, _), r in res.wrk.items() if t == target]
    clean = [v for v in vals if v is not None]
    return sum(clean) if clean else None


def _max(res: Results, target: str, key: str) -> float | None:
    vals = [num(r, key) for (t, _, _), r in res.wrk.items() if t == target]
    clean = [v for v in vals if v is not None]
    return max(clean) if clean else None


def details(res: Results) -> list[str]:
    out = [
        "| target | scenario | c | req/s | p50 | p90 | p99 | max ms | errors | gw CPU % "
        "| RSS MB | other CPU % | calib ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (t, s, c), r in res.wrk.items():
        vals = [r.get(k, "-") for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors",
                                         "cpu", "rss_mb", "other_cpu", "calib_ms")]  # fmt: skip
        out.append(f"| {t} | {s} | {c} | " + " | ".join(vals) + " |")
    if res.ttft:
        out += ["", "| target | TTFT c | n | errors | ttfb p50 | ttft p50 | ttft p90 | ttft p99 |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for (t, c), r in res.ttft.items():
            vals = [r.get(k, "-") for k in ("n", "errors", "ttfb_p50_ms", "ttft_p50_ms",
                                             "ttft_p90_ms", "ttft_p99_ms")]  # fmt: skip
            out.append(f"| {t} | {c} | " + " | ".join(vals) + " |")
    return out


def machine() -> str:
    model = "unknown CPU"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    return (
        f"{os.cpu_count()} vCPU {model}, {mem_kb / 1024 / 1024:.0f} GB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def calib_range(res: Results) -> str:
    vals = [num(r, "calib_ms") for r in res.wrk.values()]
    clean = [v for v in vals if v is not None]
    if not clean:
        return "-"
    return f"{min(clean):.0f}-{max(clean):.0f} (median {statistics.median(clean):.0f})"


def notes(res: Results) -> list[str]:
    out = []
    for t in TARGETS:
        m = res.meta.get(t, {})
        if "error" in m:
            out.append(f"- **{t} not measured**: {m['error'].replace('_', ' ')}")
        elif m:
            extra = ", ".join(f"{k}={v}" for k, v in m.items() if k not in {"idle_rss_mb"})
            out.append(f"- {t}: {extra}")
    return out


def render_md(res: Results, date: str, command: str) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()  # fmt: skip
        dirty_tree = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, check=False).stdout  # fmt: skip
        if commit and dirty_tree.strip():
            commit += " + uncommitted changes"
    except OSError:
        commit = ""
    lines = [
        "# Turnout benchmark results",
        "",
        f"- Date: {date}",
        f"- Machine: {machine()}",
        f"- Command: `{command}`" + (f" at commit `{commit}`" if commit else ""),
        "- Layout: the gateway (all its threads) pinned to one core; wrk, the mocks, the Tansu "
        "broker and the snapshot server on the other. Direct: the mock alone on the gateway core.",
        f"- calib ms (pure-Python loop on the gateway core; lower = faster VM): {calib_range(res)}",
        "",
        *table(res),
        "",
        f"`*` = more than {LIMITS['other_max_pct']:.0f} % of a core of foreign CPU load during "
        "that run (other sessions on this VM): treat as contaminated. "
        "Ratios: Turnout ÷ LiteLLM and Turnout ÷ direct of the row's value (for latency rows, of "
        'p50 or of the added ms). "added" = gateway p50 - direct p50 at the same concurrency.',
        "",
        *notes(res),
        "",
        *targets(res),
        "",
        *(["## Other client APIs (issue 18)", "", *doors(res), ""] if doors(res) else []),
        "## Every run",
        "",
        *details(res),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--date", default="")
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--other-max", type=float, default=LIMITS["other_max_pct"])
    args = ap.parse_args()
    LIMITS["other_max_pct"] = args.other_max
    res = parse(args.results.read_text())
    print("\n".join(table(res)))
    print("\n".join(["", *notes(res)]))
    print("\n".join(["", *targets(res)]))
    if doors(res):
        print("\n".join(["", *doors(res)]))
    if args.md is not None:
        # hand-written notes from KEEP_FROM on (profile findings...) survive a re-run
        old = args.md.read_text() if args.md.exists() else ""
        kept = old[old.index(KEEP_FROM) :] if KEEP_FROM in old else ""
        args.md.write_text(render_md(res, args.date, args.command) + ("\n" + kept if kept else ""))
        print(f"\nwrote {args.md}")


if __name__ == "__main__":
    main()
