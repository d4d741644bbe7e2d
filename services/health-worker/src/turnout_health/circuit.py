"""A circuit breaker (pure logic; the caller passes the monotonic time).

closed --N failures within the window--> open --cool-down--> half_open (one trial)
half_open --success--> closed; half_open --failure--> open (a new cool-down).
Neutral results (auth failures, config problems) never move it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from turnout_common.events import CircuitState
from turnout_health.probes import Verdict


@dataclass
class Circuit:
    threshold: int
    window_s: float
    cooldown_s: float
    state: CircuitState = "closed"
    opened_at: float | None = None
    failures: deque[float] = field(default_factory=deque)

    def _prune(self, now: float) -> None:
        while self.failures and now - self.failures[0] > self.window_s:
            self.failures.popleft()

    def failure_count(self, now: float) -> int:
        self._prune(now)
        return len(self.failures)

    def record(self, verdict: Verdict, now: float) -> bool:
        """Feed one result; True if the state changed."""
        if verdict == "neutral" or self.state == "open":
            return False
        if self.state == "half_open":
            if verdict == "success":
                self._close()
            else:
                self._open(now)
            return True
        if verdict == "failure":
            self.failures.append(now)
            self._prune(now)
            if len(self.failures) >= self.threshold:
                self._open(now)
                return True
        return False

    def trip(self, now: float) -> bool:
        """Open now (passive signals); True if it was not open already."""
        if self.state == "open":
            return False
        self._open(now)
        return True

    def trial_due(self, now: float) -> bool:
        return (
            self.state == "open"
            and self.opened_at is not None
            and now - self.opened_at >= self.cooldown_s
        )

    def half_open(self) -> None:
        self.state = "half_open"

    def _open(self, now: float) -> None:
        self.state = "open"
        self.opened_at = now
        self.failures.clear()

    def _close(self) -> None:
        self.state = "closed"
        self.opened_at = None
        self.failures.clear()
