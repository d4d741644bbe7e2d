"""Cost of the router's in-flight journal per request (issue 21 item 11), in one run.

Times ``InflightJournal.started`` + ``ended`` (two unbuffered write(2) calls and one orjson
dump of a typical record) against the same loop without the journal. Run:
``uv run python bench/journal_cost.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from turnout_router.journal import InflightJournal
from turnout_router.record import UsageRecord

RECORD = UsageRecord(
    request_id="req_0123456789abcdef01234567", user_id="user-1", key_id="key-1",
    purpose="chat", requested_model="gpt-4o-mini", model="gpt-4o-mini",
    upstream_model="gpt-4o-mini", provider_id="prov-1", provider="openai",
    deployment_id="dep-1", route="model", input_tokens=120, estimated=True, status=502,
    outcome="router_crash", error_code="router_crash", cost_usd="0.000018000",
    started_at=1796349826.123,
)  # fmt: skip
N = 200_000


def run(journal: InflightJournal | None) -> float:
    t0 = time.perf_counter()
    for i in range(N):
        rid = f"req_{i}"
        if journal is not None:
            journal.started(rid, RECORD)
            journal.ended(rid)
    return (time.perf_counter() - t0) / N * 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        j = InflightJournal(Path(d), rotate_bytes=64 << 20)
        j.open()
        base = min(run(None) for _ in range(3))
        with_j = min(run(j) for _ in range(3))
        j.close()
    print(f"| loop alone | {base:.3f} µs/request |")
    print(f"| with journal | {with_j:.3f} µs/request |")
    print(f"| journal cost | {with_j - base:.3f} µs/request |")


if __name__ == "__main__":
    main()
