"""Budget checks and in-flight reservations on this replica.

Metering publishes ``turnout.credit.v1`` state per ``user:<id>`` / ``key:<id>``
(``blocked``, ``remaining_usd``, ``balance_usd``; ``remaining_usd`` below is the smaller of
the budget's remainder and the prepaid balance). This replica refuses a blocked subject, and
it holds an
in-flight *reservation* of each admitted request's estimated cost, plus the cost it has
served that metering has not yet reflected (``unreflected``: what it charged, less each later
credit event's increase of ``spent_usd``), so concurrent requests cannot all pass a
nearly-spent budget: a request is admitted only while
``remaining_usd - unreflected - reserved - estimate >= 0``.

A single replica cannot overspend by more than the estimate error of its in-flight
requests. Without a shared store, replicas do not see each other's reservations: with N
replicas the worst-case overspend of one subject is N x (its in-flight estimated cost on a
replica + what it spends during metering's lag until the next credit event). With one
(``TURNOUT_REDIS_URL``) the same arithmetic runs in the store over every replica's
reservations and unreflected cost (:mod:`turnout_router.shared`), so N replicas overspend
no more than one; this class is then the fallback while the store is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout_common.errors import InsufficientQuota
from turnout_router.entities import User
from turnout_router.state import Credit, RouterState


def short_of(subject: str, room: float) -> InsufficientQuota:
    """429 ``insufficient_quota``: what ``subject`` may still spend does not cover it."""
    return InsufficientQuota(
        f"what this {subject.split(':')[0]} may still spend "
        f"(${max(room, 0):.4f} of budget or prepaid balance) does not cover this request",
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

    def subjects(
        self, user_id: str, key_id: str, user: User | None = None
    ) -> list[tuple[str, Credit]]:
        """The caller's subjects whose spending is limited, with their credit state; 429
        ``insufficient_quota`` for a blocked one."""
        credits = self._state.credits
        limited: list[tuple[str, Credit]] = []
        for s in ("user:" + user_id, "key:" + key_id):
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
                limited.append((s, c))
        return limited

    def reserve(
        self, user_id: str, key_id: str, estimate: float, user: User | None = None
    ) -> Reservation | None:
        limited = self.subjects(user_id, key_id, user)
        for s, c in limited:
            assert c.remaining_usd is not None
            used = self._unreflected(s, c)
            if c.remaining_usd - used - self.reserved.get(s, 0.0) - estimate < 0:
                raise short_of(s, c.remaining_usd - used)
        if not limited:
            return None
        for s, _ in limited:
            self.reserved[s] = self.reserved.get(s, 0.0) + estimate
        return Reservation(tuple(s for s, _ in limited), estimate)

    def remaining_after(self, user_id: str, key_id: str, billed: float) -> float | None:
        """What the caller may still spend once this request (``billed``) is counted: the
        tightest of its user's and key's limits (budget remainder or prepaid balance) as this
        replica knows them — the latest credit state, less what it served since that metering
        has not reflected yet. None when neither is limited."""
        credits = self._state.credits
        if not credits:
            return None
        left: float | None = None
        for s in ("user:" + user_id, "key:" + key_id):
            c = credits.get(s)
            if c is None or c.remaining_usd is None:
                continue
            room = c.remaining_usd - self._unreflected(s, c) - billed
            left = room if left is None else min(left, room)
        return None if left is None else max(left, 0.0)

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
        subjects until a credit event reflects it — also while a subject has no limit, so a
        balance granted before metering reflects this request still counts it."""
        self.release(reservation)
        credits = self._state.credits
        if cost <= 0 or not credits:
            return
        for s in (f"user:{user_id}", f"key:{key_id}"):
            c = credits.get(s)
            if c is None:
                continue
            self.unreflected[s] = (c.seq, c.spent_usd, self._unreflected(s, c) + cost)
