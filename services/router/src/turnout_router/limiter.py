"""Where a request's rate limits and budget reservation are held: in the shared store when
one is configured and answering (:mod:`turnout_router.shared`), else on this replica
(:mod:`turnout_router.ratelimits`, :mod:`turnout_router.budgets`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from turnout_router.budgets import Budgets, Reservation, short_of
from turnout_router.ratelimits import (
    Buckets,
    Limit,
    check_rates,
    check_size,
    limited,
    rate_headers,
    tightest,
)
from turnout_router.shared import SharedReservation, SharedStore, StoreDown

if TYPE_CHECKING:
    from turnout_router.auth import Caller
    from turnout_router.context import RequestContext
    from turnout_router.state import Credit


class Limiter:
    """Takes a request's rate limits and reserves its budget; settles both afterwards."""

    def __init__(self, budgets: Budgets, shared: SharedStore | None = None) -> None:
        self.buckets = Buckets()
        self.budgets = budgets
        self.shared = shared

    async def admit(
        self,
        ctx: RequestContext,
        caller: Caller,
        limits: list[Limit],
        tokens: int,
        estimate: float | None,
    ) -> None:
        """Take one request and ``tokens`` from every limit and reserve ``estimate`` (None:
        no budget applies) on every limited subject, or nothing: 413, 429
        ``rate_limit_exceeded`` or 429 ``insufficient_quota`` otherwise."""
        store = self.shared
        if store is not None:
            key = caller.key
            subjects: list[tuple[str, Credit]] = []
            if estimate is not None:
                subjects = self.budgets.subjects(key.user_id, key.id, caller.user)
            if limits or subjects:
                check_size(limits, tokens)
                if store.up:
                    try:
                        await self._admit_shared(
                            store, ctx, caller, limits, tokens, subjects, estimate
                        )
                        return
                    except StoreDown:
                        pass
                store.fallbacks += 1
        if limits:
            now = time.monotonic()
            check_rates(self.buckets, limits, tokens, now)
            ctx.limits = tuple(limits)
            ctx.rate_headers = rate_headers(self.buckets, limits, now)
        if estimate is not None:
            key = caller.key
            ctx.reservation = self.budgets.reserve(key.user_id, key.id, estimate, caller.user)

    async def _admit_shared(
        self,
        store: SharedStore,
        ctx: RequestContext,
        caller: Caller,
        limits: list[Limit],
        tokens: int,
        subjects: list[tuple[str, Credit]],
        estimate: float | None,
    ) -> None:
        key = caller.key
        rates: list[tuple[str, int, float]] = []
        units: list[tuple[Limit, str, str]] = []
        for lim in limits:
            for suffix, limit, amount, unit in (
                (":rpm", lim.rpm, 1.0, "requests"),
                (":tpm", lim.tpm, float(tokens), "tokens"),
            ):
                if limit:
                    rates.append((lim.subject + suffix, limit, amount))
                    units.append((lim, suffix, unit))
        budgets = [(s, c.seq, c.remaining_usd or 0.0, c.spent_usd) for s, c in subjects]
        member = f"{ctx.request_id}:{estimate or 0.0!r}"
        taken = await store.admit(key.user_id, rates, budgets, member, estimate or 0.0)
        if taken.refused == 1:
            lim, _, unit = units[taken.index]
            raise limited(lim, unit, rates[taken.index][1], taken.value)
        if taken.refused == 2:
            raise short_of(subjects[taken.index][0], taken.value)
        if limits:
            ctx.limits = tuple(limits)
            ctx.limits_shared = True
            ctx.rate_headers = tightest(
                [
                    (suffix, rate[1], left, reset)
                    for (_, suffix, _), rate, (left, reset) in zip(
                        units, rates, taken.levels, strict=True
                    )
                ]
            )
        if subjects and estimate is not None:
            names = tuple(s for s, _ in subjects)
            ctx.reservation = SharedReservation(
                names, estimate, member=member, keys=store.budget_keys(key.user_id, names)
            )

    def settle_tokens(self, ctx: RequestContext, delta: int) -> None:
        """Charge (or refund) the difference between real and estimated tokens."""
        if ctx.limits_shared and self.shared is not None and ctx.caller is not None:
            rates = [(lim.subject + ":tpm", lim.tpm, float(delta)) for lim in ctx.limits if lim.tpm]
            res = ctx.reservation
            if isinstance(res, SharedReservation):
                res.rates = tuple(rates)  # goes with the release (charge), one script
            elif rates:
                self.shared.settle(ctx.caller.key.user_id, rates, None, 0.0)
            return
        for lim in ctx.limits:
            if lim.tpm:
                self.buckets.adjust(lim.subject + ":tpm", lim.tpm, delta)

    def charge(
        self,
        user_id: str | None,
        key_id: str | None,
        cost: float,
        reservation: Reservation | None = None,
    ) -> None:
        """The usage emitter priced a request: release its reservation, count its cost."""
        if isinstance(reservation, SharedReservation) and self.shared is not None:
            self.shared.settle(user_id or "", reservation.rates, reservation, cost)
            return
        self.budgets.charge(user_id, key_id, cost, reservation)
