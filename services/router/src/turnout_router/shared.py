"""Rate limits and budget reservations shared by every router replica (Redis / Valkey).

On when ``TURNOUT_REDIS_URL`` is set. One request costs at most one round trip to the store
(one script, :data:`~turnout_router.shared_scripts.ADMIT`, that takes every rate limit and
reserves every budget of the request, or nothing) and none when the caller has neither;
the settling afterwards (real tokens, the reservation released, the cost counted) leaves
the request path and is pipelined in batches.

Fail-open: a store that does not answer (connection refused, timeout, any Redis error)
marks it down; requests then use this replica's own limits (``turnout_router.ratelimits``,
``turnout_router.budgets``), each one counted in
``turnout_router_shared_limits_fallback_total``, and a background task pings the store until
it answers again (logged both ways). Settlements that could not be written wait for it
(bounded); a reservation nobody releases expires after the request timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha1
from typing import TYPE_CHECKING, Any

from turnout_router.budgets import Reservation
from turnout_router.resp import ReplyError, Resp, connect
from turnout_router.shared_scripts import ADMIT, SETTLE

if TYPE_CHECKING:
    from turnout_router.settings import RouterSettings

log = logging.getLogger(__name__)
PENDING_MAX = 100_000
"""Settlements kept while the store is down (the oldest are dropped past this)."""


def shared_store(settings: RouterSettings) -> SharedStore | None:
    """The store ``TURNOUT_REDIS_URL`` names, or None (limits per replica)."""
    if not settings.redis_url:
        return None
    return SharedStore(
        settings.redis_url,
        settings.redis_prefix,
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_s=settings.redis_retry_s,
        reservation_ttl_s=settings.request_timeout_s + 60,
    )


class StoreDown(Exception):
    """The shared store did not answer: use this replica's limits."""


@dataclass(slots=True)
class SharedReservation(Reservation):
    """A reservation held in the store: its member in each subject's set, and the keys."""

    member: str = ""
    keys: tuple[str, ...] = ()
    rates: tuple[tuple[str, int, float], ...] = ()
    """The request's tpm settlement, sent with the release (one script for both)."""


@dataclass(slots=True, frozen=True)
class Taken:
    """What :meth:`SharedStore.admit` answered: ``refused`` 0 (all taken), 1 (rate key
    ``index`` refused; ``value`` = seconds to wait) or 2 (budget ``index`` refused; ``value``
    = what its subject may still spend); ``levels`` = (remaining, reset s) per rate key."""

    refused: int
    index: int
    value: float
    levels: tuple[tuple[float, float], ...] = ()


class SharedStore:
    """The connection (:mod:`turnout_router.resp`), the two scripts, the store's health and
    the settle queue."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        timeout_s: float,
        retry_s: float,
        reservation_ttl_s: float,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.ttl = reservation_ttl_s
        self.scripts = {
            ADMIT: sha1(ADMIT.encode(), usedforsecurity=False).hexdigest(),  # Redis' script id
            SETTLE: sha1(SETTLE.encode(), usedforsecurity=False).hexdigest(),
        }
        self.conn: Resp | None = None
        self.up = False
        self.fallbacks = 0  # requests served on local limits because the store was down
        self.errors = 0
        self._pending: list[tuple[list[str], list[Any]]] = []
        self._flushing = False
        self._recovering = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- keys ---------------------------------------------------------------------------
    def key(self, user_id: str, name: str) -> str:
        """Every key of one user's requests shares its hash tag (one Cluster slot)."""
        return f"{self.prefix}{{{user_id}}}:{name}"

    def budget_keys(self, user_id: str, subjects: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.key(user_id, s + ":budget") for s in subjects) + tuple(
            self.key(user_id, s + ":held") for s in subjects
        )

    # --- admission ----------------------------------------------------------------------
    async def admit(
        self,
        user_id: str,
        rates: Sequence[tuple[str, int, float]],
        budgets: Sequence[tuple[str, int, float, float]],
        member: str,
        estimate: float,
    ) -> Taken:
        """Take ``(name, limit, amount)`` from every rate key and reserve ``estimate`` on
        every ``(subject, seq, remaining, spent)``, or nothing. :class:`StoreDown` when the
        store does not answer."""
        keys = [self.key(user_id, n) for n, _, _ in rates]
        keys += [self.key(user_id, s + ":budget") for s, _, _, _ in budgets]
        keys += [self.key(user_id, s + ":held") for s, _, _, _ in budgets]
        args: list[Any] = [len(rates), len(budgets), member, repr(estimate), self.ttl]
        for _, limit, amount in rates:
            args += (limit, amount)
        for _, seq, rem, spent in budgets:
            args += (seq, repr(rem), repr(spent))
        try:
            out = await self._eval(ADMIT, keys, args)
        except (OSError, ReplyError) as exc:
            self.down(exc)
            raise StoreDown from exc
        if out[0] == 0:
            vals = [float(v) for v in out[1:]]
            return Taken(0, 0, 0.0, tuple(zip(vals[::2], vals[1::2], strict=True)))
        return Taken(int(out[0]), int(out[1]) - 1, float(out[2]))

    async def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        conn = self.conn
        if conn is None:
            raise ConnectionError("not connected to the store")
        try:
            return await conn.call("EVALSHA", self.scripts[script], len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await conn.call("SCRIPT", "LOAD", script)  # the store restarted empty
            return await conn.call("EVALSHA", self.scripts[script], len(keys), *keys, *args)

    # --- settling (off the request path, pipelined) --------------------------------------
    def settle(
        self,
        user_id: str,
        rates: Sequence[tuple[str, int, float]],
        res: SharedReservation | None,
        cost: float,
    ) -> None:
        """Settle tpm to the real tokens (``(name, limit, delta)``), release ``res`` and count
        ``cost`` as spent-but-unreflected; sent with the next batch."""
        keys = [self.key(user_id, n) for n, _, _ in rates]
        args: list[Any]
        if res is not None:
            keys += res.keys
            args = [len(rates), len(res.subjects), res.member, repr(res.amount)]
            args.append(f"{max(cost, 0.0):.12f}")
        else:
            args = [len(rates), 0, "", "0", "0"]
        for _, limit, delta in rates:
            args += (limit, delta)
        self._pending.append((keys, args))
        if len(self._pending) > PENDING_MAX:
            del self._pending[: len(self._pending) - PENDING_MAX]
        if not self._flushing and self.up:
            self._flushing = True
            self._spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending and self.up:
                batch, self._pending = self._pending, []
                try:
                    await self._settle_batch(batch)
                except (OSError, ReplyError) as exc:
                    self._pending[:0] = batch  # kept for when the store is back (a replayed
                    self.down(exc)  # settle releases nothing twice: ZREM finds it gone)
        finally:
            self._flushing = False

    async def _settle_batch(self, batch: list[tuple[list[str], list[Any]]]) -> None:
        """One write for the whole batch (futures, no task per command); the scripts are
        loaded again once if the store lost them."""
        conn = self.conn
        if conn is None:
            raise ConnectionError("not connected to the store")
        sha = self.scripts[SETTLE]
        futs = [conn.call("EVALSHA", sha, len(keys), *keys, *args) for keys, args in batch]
        results = await asyncio.gather(*futs, return_exceptions=True)
        again = [b for b, r in zip(batch, results, strict=True) if isinstance(r, ReplyError)]
        if again:
            if not str(next(r for r in results if isinstance(r, ReplyError))).startswith(
                "NOSCRIPT"
            ):
                raise next(r for r in results if isinstance(r, ReplyError))
            await conn.call("SCRIPT", "LOAD", SETTLE)
            futs = [conn.call("EVALSHA", sha, len(keys), *keys, *args) for keys, args in again]
            await asyncio.gather(*futs)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, ReplyError):
                raise r

    # --- health -------------------------------------------------------------------------
    def down(self, exc: BaseException) -> None:
        self.errors += 1
        if self.conn is not None:
            self.conn.abort("failed")
            self.conn = None
        if self.up or not self._recovering:
            if self.up:
                log.warning(
                    "shared limits store unreachable (%s: %s); using this replica's own "
                    "limits until it answers again",
                    type(exc).__name__,
                    exc,
                )
            self.up = False
            if not self._recovering:
                self._recovering = True
                self._spawn(self._recover())

    async def _connect(self) -> None:
        conn = await connect(self.url, self.timeout_s)
        try:
            for script in self.scripts:
                await conn.call("SCRIPT", "LOAD", script)
        except BaseException:
            conn.abort("set-up failed")
            raise
        self.conn = conn
        self.up = True

    async def _recover(self) -> None:
        t0 = time.monotonic()
        try:
            while True:
                await asyncio.sleep(self.retry_s)
                try:
                    await self._connect()
                except (OSError, ReplyError, ValueError):
                    continue
                log.info(
                    "shared limits store reachable again after %.1fs; limits are shared again",
                    time.monotonic() - t0,
                )
                if self._pending and not self._flushing:
                    self._flushing = True
                    await self._flush()
                return
        finally:
            self._recovering = False

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        """Connect and load the scripts (a store down at start is only logged: limits fall
        back to this replica's until it answers)."""
        try:
            await self._connect()
        except (OSError, ReplyError, ValueError) as exc:
            self.up = True  # down() logs it and starts the recovery
            self.down(exc)
        else:
            log.info("rate limits and budget reservations are shared (Redis)")

    async def close(self) -> None:
        if self._pending and self.up and not self._flushing:
            self._flushing = True
            await self._flush()
        for task in list(self._tasks):
            task.cancel()
        if self.conn is not None:
            self.conn.abort("closing")
            self.conn = None
