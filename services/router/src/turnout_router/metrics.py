"""Prometheus metrics kept cheap: plain counters and one latency histogram, rendered on demand."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Requests by (path, status), latency histogram by path, and gauges from callbacks."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self._hist: dict[str, list[float]] = {}
        self.attempt_failures: dict[str, int] = {}
        self.gauges: dict[str, Callable[[], float]] = {}

    def observe(self, path: str, status: int, seconds: float) -> None:
        k = (path, status)
        self.requests[k] = self.requests.get(k, 0) + 1
        h = self._hist.get(path)
        if h is None:
            h = self._hist[path] = [0.0] * (len(BUCKETS) + 2)  # buckets, +Inf, sum
        h[bisect_left(BUCKETS, seconds)] += 1
        h[-1] += seconds

    def failed_attempt(self, provider: str) -> None:
        self.attempt_failures[provider] = self.attempt_failures.get(provider, 0) + 1

    def render(self) -> bytes:
        out = [
            "# HELP turnout_router_requests_total Requests by path and status.",
            "# TYPE turnout_router_requests_total counter",
        ]
        for (path, status), n in sorted(self.requests.items()):
            out.append(f'turnout_router_requests_total{{path="{path}",status="{status}"}} {n}')
        out += [
            "# HELP turnout_router_request_seconds Request latency.",
            "# TYPE turnout_router_request_seconds histogram",
        ]
        for path, h in sorted(self._hist.items()):
            acc = 0.0
            for i, le in enumerate((*BUCKETS, "+Inf")):
                acc += h[i]
                out.append(
                    f'turnout_router_request_seconds_bucket{{path="{path}",le="{le}"}} {acc:g}'
                )
            out.append(f'turnout_router_request_seconds_sum{{path="{path}"}} {h[-1]:.6f}')
            out.append(f'turnout_router_request_seconds_count{{path="{path}"}} {acc:g}')
        out += [
            "# HELP turnout_router_upstream_failures_total Failed upstream attempts by provider.",
            "# TYPE turnout_router_upstream_failures_total counter",
        ]
        for prov, n in sorted(self.attempt_failures.items()):
            out.append(f'turnout_router_upstream_failures_total{{provider="{prov}"}} {n}')
        for name, fn in sorted(self.gauges.items()):
            out += [f"# TYPE {name} gauge", f"{name} {fn():g}"]
        return ("\n".join(out) + "\n").encode()
