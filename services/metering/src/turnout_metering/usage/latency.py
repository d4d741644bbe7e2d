"""Fixed latency buckets for the rollups' histograms, and percentiles estimated from them."""

from __future__ import annotations

from collections.abc import Sequence

# Upper bounds (ms) of each bucket; a final bucket holds everything slower.
BOUNDS: tuple[float, ...] = (
    5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000,
    7500, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000,
)  # fmt: skip
BUCKETS = len(BOUNDS) + 1


def bucket_index_sql(column: str = "latency_ms") -> str:
    """SQL for the bucket index (0-based) of ``column``.

    ``width_bucket(x, bounds)`` returns how many bounds are <= x, so a value equal to an
    upper bound falls into the next bucket; the estimate treats buckets as [lo, hi).
    """
    bounds = ",".join(str(float(b)) for b in BOUNDS)
    return f"width_bucket({column}, ARRAY[{bounds}]::float8[])"


def histogram_sql(index_column: str = "b") -> str:
    """SQL for an array of per-bucket counts (in an aggregate query over ``index_column``)."""
    parts = [f"count(*) FILTER (WHERE {index_column} = {i})" for i in range(BUCKETS)]
    return "ARRAY[" + ", ".join(parts) + "]::bigint[]"


def percentile(hist: Sequence[int], q: float) -> float | None:
    """Estimate the ``q`` quantile (0..1) by linear interpolation inside its bucket."""
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            lo = 0.0 if i == 0 else float(BOUNDS[i - 1])
            hi = float(BOUNDS[i]) if i < len(BOUNDS) else lo * 2
            return round(lo + (hi - lo) * max(0.0, rank - seen) / count, 3)
        seen += count
    return float(BOUNDS[-1])


def summed_histogram_sql(column: str = "lat_hist") -> str:
    """SQL for the bucket-by-bucket sum of the histograms in ``column`` (an aggregate): one
    histogram for a group of rollup rows, added up in PostgreSQL, not fetched one by one."""
    parts = [f"sum({column}[{i + 1}])" for i in range(BUCKETS)]
    return "ARRAY[" + ", ".join(parts) + "]::bigint[]"
