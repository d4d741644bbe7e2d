"""The usage chart's points: every day of the range, a day without usage as zero (a pure
transform of metering's ``group_by=day`` summary; the pages draw it in the browser tests)."""

from __future__ import annotations

from turnout_console.api.usage import day_series
from turnout_console.client import ApiResult


def summary(*days: tuple[str, int]) -> ApiResult:
    rows = [
        {"key": d, "requests": n, "input_tokens": 8 * n, "output_tokens": 12 * n,
         "cost_usd": f"{0.0000032 * n:.9f}"}
        for d, n in days
    ]  # fmt: skip
    return ApiResult(200, {"data": rows})


def test_a_lone_day_is_drawn_over_the_whole_range() -> None:
    series = day_series(summary(("2026-12-04", 1)), "2026-11-05", "2026-12-04")
    assert len(series) == 30
    assert series[0] == {"day": "2026-11-05", "requests": 0, "tokens": 0, "cost": "0"}
    assert series[-1] == {"day": "2026-12-04", "requests": 1, "tokens": 20, "cost": "0.000003200"}
    assert sum(s["requests"] for s in series) == 1


def test_without_bounds_the_gaps_between_days_are_zero() -> None:
    series = day_series(summary(("2026-12-01", 2), ("2026-12-04", 3)))
    assert [s["day"] for s in series] == ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]
    assert [s["requests"] for s in series] == [2, 0, 0, 3]


def test_nothing_failed_or_too_long_is_not_filled() -> None:
    assert day_series(summary()) == []
    assert day_series(ApiResult(502, {"error": "down"})) == []
    long = day_series(summary(("2020-01-01", 1), ("2026-01-01", 1)))
    assert [s["day"] for s in long] == ["2020-01-01", "2026-01-01"]


def test_without_a_first_day_the_chart_shows_at_least_min_days() -> None:
    series = day_series(summary(("2026-12-04", 1)), None, None, min_days=30)
    assert [s["day"] for s in series][:: len(series) - 1] == ["2026-11-05", "2026-12-04"]
    assert len(series) == 30
    # usage over a longer range keeps its own first day
    longer = day_series(summary(("2026-10-01", 1), ("2026-12-04", 1)), None, None, min_days=30)
    assert longer[0]["day"] == "2026-10-01" and longer[-1]["day"] == "2026-12-04"
