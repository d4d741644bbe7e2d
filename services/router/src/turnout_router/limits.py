"""Rate limits (token buckets per key and per provider) and budget reservations.

Budgets. Metering publishes ``turnout.credit.v1`` state per ``user:<id>`` / ``key:<id>``
(``blocked``, ``remaining_usd``, ``balance_usd``; ``remaining_usd`` below is the smaller of
the budget's remainder and the prepaid balance). This replica refuses a blocked subject, and
it holds an
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

from turnout_common.errors import InsufficientQuota, RateLimited, RequestTooLarge
from turnout_router.entities import User
from turnout_router.state import Credit, RouterState

WINDOW_S = 60.0
"""Every rate limit is per minute: no ``Retry-After`` is longer than this."""


class Buckets:
    """Token buckets per (subject, limit): capacity = the per-minute limit, refilled linearly.

    A bucket never goes below ``-limit`` (settling a request's real tokens may put it in
    debt, at most one window's worth), so no wait is ever longer than the window.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: dict[str, list[float]] = {}

    def _level(self, key: str, limit: int, now: float) -> list[float]:
        st = self._state.get(key)
        if st is None:
            st = self._state[key] = [float(limit), now]
        else:
            st[0] = min(float(limit), st[0] + (now - st[1]) * (limit / WINDOW_S))
            st[1] = now
        return st

    def take(self, key: str, limit: int | None, amount: float, now: float) -> float:
        """Take ``amount``; returns 0 when allowed, else the seconds until it would be (at
        most the window; an amount larger than the limit never fits and takes nothing)."""
        if not limit:
            return 0.0
        if amount > limit:
            return WINDOW_S
        st = self._level(key, limit, now)
        if st[0] >= amount:
            st[0] -= amount
            return 0.0
        return min(WINDOW_S, (amount - st[0]) / (limit / WINDOW_S))

    def adjust(self, key: str, limit: int | None, delta: float) -> None:
        """Charge (or refund) ``delta`` after the fact, e.g. actual vs estimated tokens."""
        st = self._state.get(key)
        if limit and st is not None:
            st[0] = max(-float(limit), min(float(limit), st[0] - delta))

    def remaining(self, key: str, limit: int, now: float) -> tuple[int, float]:
        """(what is left now, seconds until the bucket is full again)."""
        st = self._level(key, limit, now)
        left = max(0.0, st[0])
        return int(left), (limit - st[0]) / (limit / WINDOW_S)


@dataclass(slots=True, frozen=True)
class Limit:
    """One subject's per-minute limits, and who set them (for the error message)."""

    subject: str
    rpm: int | None
    tpm: int | None
    owner: str


def check_rates(buckets: Buckets, limits: list[Limit], tokens: int, now: float) -> None:
    """Take one request and ``tokens`` from every limit, or nothing at all.

    A request larger than a tokens-per-minute limit can never pass: 413
    ``request_too_large`` before anything is taken. Otherwise 429 ``rate_limit_exceeded``
    (``Retry-After`` at most the window) naming the limit that refused it; what the limits
    checked before it took is given back.
    """
    for lim in limits:
        if lim.tpm and tokens > lim.tpm:
            raise RequestTooLarge(
                f"this request needs about {tokens} tokens, more than the {lim.owner}'s limit "
                f"of {lim.tpm} tokens per minute: it can never pass; send a shorter prompt or "
                "a smaller max_tokens",
                param="max_tokens",
            )
    taken: list[tuple[str, int, float]] = []
    for lim in limits:
        for suffix, limit, amount, unit in (
            (":rpm", lim.rpm, 1.0, "requests"),
            (":tpm", lim.tpm, float(tokens), "tokens"),
        ):
            if not limit:
                continue
            key = lim.subject + suffix
            wait = buckets.take(key, limit, amount, now)
            if wait:
                for k, lmt, amt in taken:
                    buckets.adjust(k, lmt, -amt)
                raise RateLimited(
                    f"the {lim.owner}'s rate limit of {limit} {unit} per minute is reached; "
                    f"retry in {wait:.1f}s",
                    retry_after=wait,
                )
            taken.append((key, limit, amount))


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``850ms``, ``12.5s``, ``1m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{round(seconds % 60)}s"


def rate_headers(buckets: Buckets, limits: list[Limit], now: float) -> list[tuple[str, str]]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` of the tightest limits."""
    out: list[tuple[str, str]] = []
    for suffix, unit in ((":rpm", "requests"), (":tpm", "tokens")):
        best: tuple[int, int, float] | None = None
        for lim in limits:
            limit = lim.rpm if suffix == ":rpm" else lim.tpm
            if not limit:
                continue
            left, reset = buckets.remaining(lim.subject + suffix, limit, now)
            if best is None or left < best[1]:
                best = (limit, left, reset)
        if best is not None:
            out.append((f"x-ratelimit-limit-{unit}", str(best[0])))
            out.append((f"x-ratelimit-remaining-{unit}", str(best[1])))
            out.append((f"x-ratelimit-reset-{unit}", _duration(best[2])))
    return out


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
                        f"what this {s.split(':')[0]} may still spend "
                        f"(${max(c.remaining_usd - used, 0):.4f} of budget or prepaid balance) "
                        "does not cover this request",
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
