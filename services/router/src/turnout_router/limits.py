"""Rate limits (token buckets per key and per provider) and budget reservations.

Budgets. Metering publishes ``turnout.credit.v1`` state per ``user:<id>`` / ``key:<id>``
(``blocked``, ``remaining_usd``). This replica refuses a blocked subject, and it holds an
in-flight *reservation* of each admitted request's estimated cost, plus the cost it has
served that metering has not yet reflected (``unreflected``: what it charged, less each later
credit event's increase of ``spent_usd``), so concurrent requests cannot all pass a
nearly-spent budget: a request is admitted only while
``remaining_usd - unreflected - reserved - estimate >= 0``.

Cross-replica bound: replicas do not see each other's reservations. With N replicas the
worst-case overspend of one subject is N x (its in-flight estimated cost on a replica + what
it spends during metering's lag until the next credit event); a single replica cannot
overspend by more than the estimate error of its in-flight requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout_common.errors import InsufficientQuota, RateLimited
from turnout_router.entities import User
from turnout_router.state import Credit, RouterState


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
        # subject -> (credit seq, its spent_usd, cost served here not reflected in it)
        self.unreflected: dict[str, tuple[int, float, float]] = {}

    def _unreflected(self, s: str, c: Credit) -> float:
        held = self.unreflected.get(s)
        if held is None:
            return 0.0
        seq, spent, amount = held
        if seq != c.seq:
            # metering's newer event reflects (part of) what this replica served since
            amount = max(0.0, amount - max(0.0, c.spent_usd - spent))
            self.unreflected[s] = (c.seq, c.spent_usd, amount)
        return amount

    def reserve(
        self, user_id: str, key_id: str, estimate: float, user: User | None = None
    ) -> Reservation | None:
        credits = self._state.credits
        subjects = ("user:" + user_id, "key:" + key_id)
        limited: list[str] = []
        for s in subjects:
            c = credits.get(s)
            if c is None:
                if s[0] != "u" or user is None or user.budget_usd is None:
                    continue
                # a user metering has not published yet (just created): the whole budget
                c = credits[s] = Credit(-1, False, user.budget_usd, 0.0)
            if c.blocked:
                raise InsufficientQuota(
                    f"the budget of this {s.split(':')[0]} is used up; ask an admin to grant "
                    "credits or raise the budget",
                )
            if c.remaining_usd is not None:
                used = self._unreflected(s, c)
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

    def charge(
        self,
        user_id: str | None,
        key_id: str | None,
        cost: float,
        reservation: Reservation | None = None,
    ) -> None:
        """Release the request's reservation and count its actual ``cost`` against the
        subjects until a credit event reflects it."""
        self.release(reservation)
        if cost <= 0 or not self._state.credits:
            return
        for s in (f"user:{user_id}", f"key:{key_id}"):
            c = self._state.credits.get(s)
            if c is None or c.remaining_usd is None:
                continue
            self.unreflected[s] = (c.seq, c.spent_usd, self._unreflected(s, c) + cost)
