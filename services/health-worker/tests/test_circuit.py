"""The circuit breaker and the status it implies (pure logic, explicit clock)."""

from __future__ import annotations

from turnout_health.circuit import Circuit
from turnout_health.probes import ProbeResult
from turnout_health.service import derive_status

OK = ProbeResult("healthy", "success", 5.0, 200, "ok")
FAIL = ProbeResult("down", "failure", 5.0, None, "connect error")


def test_opens_after_n_failures_within_the_window() -> None:
    c = Circuit(threshold=3, window_s=10, cooldown_s=5)
    assert not c.record("failure", 0) and not c.record("failure", 1)
    assert c.record("failure", 2) and c.state == "open"


def test_failures_outside_the_window_do_not_count() -> None:
    c = Circuit(threshold=3, window_s=10, cooldown_s=5)
    for t in (0, 6, 12, 18, 24):  # never 3 within 10 s
        c.record("failure", t)
    assert c.state == "closed" and c.failure_count(24) == 2


def test_neutral_results_never_move_it() -> None:
    c = Circuit(threshold=2, window_s=10, cooldown_s=5)
    for t in range(10):
        assert not c.record("neutral", t)
    assert c.state == "closed" and c.failure_count(9) == 0


def test_half_open_after_cooldown_then_close_or_reopen() -> None:
    c = Circuit(threshold=2, window_s=10, cooldown_s=5)
    c.record("failure", 0)
    c.record("failure", 1)
    assert not c.trial_due(5) and c.trial_due(6)
    c.half_open()
    assert c.record("failure", 6) and c.state == "open" and c.opened_at == 6
    assert not c.trial_due(10) and c.trial_due(11)
    c.half_open()
    assert c.record("success", 11) and c.state == "closed" and c.failure_count(11) == 0


def test_trip_opens_once() -> None:
    c = Circuit(threshold=2, window_s=10, cooldown_s=5)
    assert c.trip(0) and not c.trip(1) and c.state == "open"


def test_derived_status() -> None:
    assert derive_status("open", FAIL, "healthy") == "down"
    assert derive_status("half_open", None, "down") == "unknown"
    assert derive_status("closed", FAIL, "healthy") == "healthy"  # one failure is no outage
    assert derive_status("closed", OK, "down") == "healthy"
