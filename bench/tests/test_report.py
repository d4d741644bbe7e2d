"""report.py turns raw rows into the comparison table and RESULTS.md."""

# ruff: noqa: E501

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from report import doors, main, parse, render_md, table, targets

ROWS = """\
direct\tmeta\tversion=mock_upstream
direct\twrk\tscenario=chat conc=64 reqs=100 rps=10000.0 p50_ms=2.00 p90_ms=3.0 p99_ms=6.0 max_ms=9 errors=0 cpu=99 rss_mb=30 other_cpu=3 calib_ms=200
direct\twrk\tscenario=delay50 conc=1 reqs=10 rps=19.0 p50_ms=50.50 p90_ms=51 p99_ms=52 max_ms=55 errors=0 cpu=2 rss_mb=30 other_cpu=1 calib_ms=210
direct\tttft\tn=24 errors=0 c=1 rps=13 ttfb_p50_ms=51 ttft_p50_ms=71.00 ttft_p90_ms=72 ttft_p99_ms=73
litellm\tmeta\tready_s=9.50 idle_rss_mb=330 version=1.106.2
litellm\twrk\tscenario=chat conc=64 reqs=100 rps=44.0 p50_ms=1181 p90_ms=2000 p99_ms=2608 max_ms=3000 errors=0 cpu=100 rss_mb=480 other_cpu=5 calib_ms=205
litellm\twrk\tscenario=delay50 conc=1 reqs=10 rps=12.0 p50_ms=79.20 p90_ms=80 p99_ms=90 max_ms=95 errors=0 cpu=50 rss_mb=480 other_cpu=2 calib_ms=204
litellm\tttft\tn=24 errors=0 c=1 rps=10 ttfb_p50_ms=80 ttft_p50_ms=93.00 ttft_p90_ms=95 ttft_p99_ms=99
litellm\tmeta\trss_after_mb=480 peak_rss_mb=493
turnout\tmeta\terror=GET_/readyz_did_not_return_200_within_30s
"""


def test_table_has_ratios_and_added_latency() -> None:
    lines = table(parse(ROWS))
    chat64 = next(ln for ln in lines if ln.startswith("| chat req/s, c=64"))
    assert "10,000" in chat64
    assert "44.0" in chat64
    added = next(ln for ln in lines if ln.startswith("| added p50"))
    assert "50.50" in added  # direct shows its p50
    assert "+28.70" in added  # LiteLLM's added latency
    ttft = next(ln for ln in lines if ln.startswith("| stream TTFT"))
    assert "+22.00" in ttft


def test_ratios_when_every_target_ran() -> None:
    rows = ROWS.replace("turnout\tmeta\terror=GET_/readyz_did_not_return_200_within_30s\n", "")
    rows += (
        "turnout\twrk\tscenario=chat conc=64 reqs=1 rps=2200.0 p50_ms=29 p90_ms=30 p99_ms=40 "
        "max_ms=50 errors=0 cpu=100 rss_mb=80 other_cpu=2 calib_ms=200\n"
    )
    chat64 = next(ln for ln in table(parse(rows)) if ln.startswith("| chat req/s, c=64"))
    assert chat64.endswith("| 50.0x | 0.22x |")


def test_results_md_names_date_machine_command_and_missing_target(tmp_path: Path) -> None:
    md = render_md(parse(ROWS), "2026-11-23 19:00 UTC", "make bench")
    assert "2026-11-23 19:00 UTC" in md
    assert "vCPU" in md
    assert "`make bench`" in md
    assert "**turnout not measured**: GET /readyz did not return 200 within 30s" in md
    assert "| litellm | chat | 64 | 44.0 |" in md


def test_contaminated_runs_are_flagged_and_empty_runs_have_no_percentiles() -> None:
    rows = ROWS + (
        "litellm\twrk\tscenario=chat conc=256 reqs=0 rps=0.0 p50_ms=0.00 p90_ms=0.00 p99_ms=0.00 "
        "max_ms=0 errors=0 cpu=100 rss_mb=480 other_cpu=140 calib_ms=205\n"
    )
    lines = table(parse(rows))
    chat256 = next(ln for ln in lines if ln.startswith("| chat req/s, c=256"))
    assert "| 0.0* |" in chat256
    pct256 = next(ln for ln in lines if ln.startswith("| chat p50 / p90 / p99 ms, c=256"))
    assert "0.00" not in pct256
    chat64 = next(ln for ln in lines if ln.startswith("| chat req/s, c=64"))
    assert "*" not in chat64


def test_cpu_per_request_and_issue8_targets() -> None:
    rows = ROWS.replace("turnout\tmeta\terror=GET_/readyz_did_not_return_200_within_30s\n", "")
    rows += (
        "turnout\tmeta\tready_s=0.80 idle_rss_mb=75 peak_rss_mb=120\n"
        "turnout\twrk\tscenario=chat conc=64 reqs=1 rps=4000.0 p50_ms=16 p90_ms=20 p99_ms=30 "
        "max_ms=50 errors=0 cpu=100 rss_mb=80 other_cpu=2 calib_ms=200\n"
        "turnout\twrk\tscenario=delay50 conc=1 reqs=10 rps=19.0 p50_ms=50.80 p90_ms=51 "
        "p99_ms=52 max_ms=55 errors=0 cpu=2 rss_mb=80 other_cpu=1 calib_ms=210\n"
    )
    res = parse(rows)
    cpu = next(ln for ln in table(res) if ln.startswith("| gateway CPU µs per request"))
    assert "| 250 |" in cpu  # 100 % of a core / 4,000 req/s
    lines = targets(res)
    assert any(ln.startswith("| chat req/s, c=64 | ≥ 2500 | 4,000 | yes |") for ln in lines)
    assert any(
        ln.startswith("| added p50 ms, 50 ms upstream, c=1 | ≤ 0.5 | 0.30 | yes") for ln in lines
    )
    assert any(ln.startswith("| RSS MB peak | ≤ 100 | 120 | NO |") for ln in lines)
    assert any(
        ln.startswith("| added p50 ms, 50 ms upstream, c=16 | ≤ 0.5 | - | - |") for ln in lines
    )


def test_rerun_keeps_the_profile_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# old table\n\n## Profile findings\n\nkept text\n")
    tsv = tmp_path / "results.tsv"
    tsv.write_text(ROWS)
    monkeypatch.setattr(sys, "argv", ["report.py", str(tsv), "--md", str(md), "--command", "c"])
    main()
    text = md.read_text()
    assert "# old table" not in text
    assert text.index("## Every run") < text.index("## Profile findings\n\nkept text")


DOORS = """\
direct\twrk\tscenario=delay50 conc=1 reqs=10 rps=19.0 p50_ms=50.50 p90_ms=51 p99_ms=52 max_ms=55 errors=0 cpu=2 rss_mb=30 other_cpu=1 calib_ms=210
turnout\twrk\tscenario=chat conc=64 reqs=100 rps=4000.0 p50_ms=16 p90_ms=20 p99_ms=30 max_ms=40 errors=0 cpu=100 rss_mb=60 other_cpu=1 calib_ms=200
turnout\twrk\tscenario=delay50 conc=1 reqs=10 rps=19.0 p50_ms=51.50 p90_ms=52 p99_ms=53 max_ms=55 errors=0 cpu=5 rss_mb=60 other_cpu=1 calib_ms=200
turnout\twrk\tscenario=messages conc=64 reqs=100 rps=3800.0 p50_ms=17 p90_ms=20 p99_ms=30 max_ms=40 errors=0 cpu=100 rss_mb=60 other_cpu=1 calib_ms=200
turnout\twrk\tscenario=messages_delay50 conc=1 reqs=10 rps=19.0 p50_ms=51.60 p90_ms=52 p99_ms=53 max_ms=55 errors=0 cpu=5 rss_mb=60 other_cpu=1 calib_ms=200
turnout\twrk\tscenario=responses conc=64 reqs=100 rps=3000.0 p50_ms=21 p90_ms=25 p99_ms=30 max_ms=40 errors=0 cpu=100 rss_mb=60 other_cpu=1 calib_ms=200
turnout\twrk\tscenario=responses_delay50 conc=1 reqs=10 rps=19.0 p50_ms=51.70 p90_ms=52 p99_ms=53 max_ms=55 errors=0 cpu=5 rss_mb=60 other_cpu=1 calib_ms=200
"""


def test_doors_beside_chat() -> None:
    lines = doors(parse(DOORS))
    rps = next(ln for ln in lines if ln.startswith("| req/s, c=64"))
    assert "4,000" in rps and "3,800" in rps and "0.95x" in rps
    assert "0.75x (over 15 %)" in rps  # responses at 3,000 is 25 % below chat
    added = next(ln for ln in lines if ln.startswith("| added p50"))
    assert "+1.00" not in added and "1.00 |" in added  # chat adds 1.00 ms
    assert "1.10x |" in added  # messages adds 1.10 ms: within 15 %
    assert "1.20x (over 15 %)" in added  # responses adds 1.20 ms (and 0.2 ms is more than noise)
    assert doors(parse(ROWS)) == []  # no door rows, no table
