"""The ``metering_lag`` alert: metering's usage consumer more than a limit behind.

Checked on a timer; emitted once when the lag goes above ``TURNOUT_ALERT_METERING_LAG_MAX``
records and armed again once it is back at or below it (this process's memory: a restart
while behind announces it again, which is what an operator wants to know).
"""

from __future__ import annotations

from turnout_common.events import AlertEvent


class LagWatch:
    def __init__(self, limit: int, service: str = "metering") -> None:
        self.limit = limit
        self.service = service
        self.firing = False

    def check(self, lag: int) -> AlertEvent | None:
        if lag <= self.limit:
            self.firing = False
            return None
        if self.firing:
            return None
        self.firing = True
        return AlertEvent(
            alert="metering_lag",
            severity="warning",
            subject_type="service",
            subject_id=self.service,
            summary=(
                f"metering is {lag} usage records behind (limit {self.limit}); spend, budgets"
                " and credit blocks lag behind traffic"
            ),
            details={"lag": lag, "limit": self.limit},
        )
