"""Rate limits (token buckets per key and per provider) and budget reservations.

Budgets. Metering publishes ``turnout.credit.v1`` state per ``user:<id>`` / ``key:<id>``
(``blocked``, ``remaining_usd``). This replica refuses a blocked subject, and it holds an
in-flight *reservation* of each admitted request's estimated cost, plus the cost it has
served since the subject's latest credit event, so concurrent requests cannot all pass a
nearly-spent budget: a request is admitted only while
``remaining_usd - spent_since_event - reserved - estimate >= 0``.

Cross-replica bound: replicas do not see each other's reservations. With N replicas the
worst-case overspend of one subject is N x (its in-flight estimated cost on a replica + what
it spends during metering's lag until the next credit event); a single replica cannot
overspend by more than the estimate error of its in-flight requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout_common.errors import InsufficientQuota, RateLimited
from turnout_router.state import RouterState


class Buckets:
    """Token buckets per (subject, limit): capacity = the per-minute limit, refilled linearly."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: dict[str, list[float]] = {}

    def take(self, key: str, limit: int | None, amount: float, now: float) -> float:
        """Take ``amount``; returns 0 when allowed, else the seconds until it would be."""
        if not limit:
            return 0.0
        st = self._state.get(key)
        rate = limit / 60.0
        if st is None:
            st = self._state[key] = [float(limit), now]
        else:
            st[0] = min(float(limit), st[0] + (now - st[1]) * rate)
            st[1] = now
        if st[0] >= amount or (amount > limit and st[0] >= limit):
            st[0] -= amount
            return 0.0
        return (amount - st[0]) / rate

    def adjust(self, key: str, limit: int | None, delta: float) -> None:
        """Charge (or refund) ``delta`` after the fact, e.g. actual vs estimated tokens."""
        st = self._state.get(key)
        if limit and st is not None:
            st[0] = min(float(limit), st[0] - delta)


def check_rate(
    buckets: Buckets, subject: str, rpm: int | None, tpm: int | None, tokens: int, now: float
) -> None:
    """Raise 429 ``rate_limit_exceeded`` (with Retry-After) if ``subject`` is over a limit."""
    wait = buckets.take(subject + ":rpm", rpm, 1.0, now)
    if wait:
        raise RateLimited(
            f"rate limit of {rpm} requests per minute reached; retry in {wait:.1f}s",
            retry_after=wait,
        )
    wait = buckets.take(subject + ":tpm", tpm, float(tokens), now)
    if wait:
        buckets.adjust(subject + ":rpm", rpm, -1.0)
        raise RateLimited(
            f"rate limit of {tpm} tokens per minute reached; retry in {wait:.1f}s",
            retry_after=wait,
        )


@dataclass(slots=True)
class Reservation:
    subjects: tuple[str, ...]
    amount: float


class Budgets:
    """Credit-state checks plus in-flight reservations (see the module docstring)."""

    def __init__(self, state: RouterState) -> None:
        self._state = state
        self.reserved: dict[str, float] = {}
        self.spent_since: dict[str, tuple[int, float]] = {}

    def reserve(self, user_id: str, key_id: str, estimate: float) -> Reservation | None:
        credits = self._state.credits
        if not credits:
            return None
        subjects = ("user:" + user_id, "key:" + key_id)
        limited: list[str] = []
        for s in subjects:
            c = credits.get(s)
            if c is None:
                continue
            if c.blocked:
                raise InsufficientQuota(
                    f"the budget of this {s.split(':')[0]} is used up; ask an admin to grant "
                    "credits or raise the budget",
                )
            if c.remaining_usd is not None:
                spent = self.spent_since.get(s)
                used = spent[1] if spent is not None and spent[0] == c.seq else 0.0
                if c.remaining_usd - used - self.reserved.get(s, 0.0) - estimate < 0:
                    raise InsufficientQuota(
                        f"the remaining budget of this {s.split(':')[0]} "
                        f"(${max(c.remaining_usd - used, 0):.4f}) does not cover this request",
                    )
                limited.append(s)
        if not limited:
            return None
        for s in limited:
            self.reserved[s] = self.reserved.get(s, 0.0) + estimate
        return Reservation(tuple(limited), estimate)

    def release(self, res: Reservation | None) -> None:
        if res is None:
            return
        for s in res.subjects:
            left = self.reserved.get(s, 0.0) - res.amount
            if left <= 1e-12:
                self.reserved.pop(s, None)
            else:
                self.reserved[s] = left

    def charge(self, user_id: str | None, key_id: str | None, cost: float) -> None:
        """Count ``cost`` against the subjects until metering's next credit event."""
        if cost <= 0 or not self._state.credits:
            return
        for s in (f"user:{user_id}", f"key:{key_id}"):
            c = self._state.credits.get(s)
            if c is None or c.remaining_usd is None:
                continue
            held = self.spent_since.get(s)
            base = held[1] if held is not None and held[0] == c.seq else 0.0
            self.spent_since[s] = (c.seq, base + cost)
