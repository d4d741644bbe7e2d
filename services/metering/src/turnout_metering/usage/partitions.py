"""usage_log's time partitions: planned here, created ahead and on demand, dropped by retention.

Partitions are ranges [from, to) of ``started_at`` in UTC, named
``usage_log_pYYYYMMDD_YYYYMMDD`` (migration 0008 and its ``usage_log_create_partition()``).
A unit is a UTC month or day (``TURNOUT_USAGE_PARTITION``); changing it later is safe: a new
unit's part that an existing partition already covers is not created again, so monthly and
daily partitions can follow each other.

Retention (``TURNOUT_USAGE_RETENTION_DAYS``) drops whole partitions that end before the
horizon (now minus the retention); it never deletes rows. Ingest never creates a partition
that ends before the horizon, so a record older than the kept raw log is refused by the
database and set aside as a dead letter instead of being counted a second time.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import asyncpg

from turnout_common.db import advisory_lock_id

log = logging.getLogger(__name__)

Unit = Literal["month", "day"]
_NAME_RE = re.compile(r"^usage_log_p(\d{8})_(\d{8})$")


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A half-open range [lo, hi) of UTC instants."""

    lo: datetime
    hi: datetime

    @property
    def name(self) -> str:
        return f"usage_log_p{self.lo:%Y%m%d}_{self.hi:%Y%m%d}"


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def unit_of(moment: datetime, unit: Unit) -> Span:
    """The month or day holding ``moment`` (UTC)."""
    d = moment.astimezone(UTC).date()
    if unit == "day":
        return Span(_midnight(d), _midnight(d + timedelta(days=1)))
    first = d.replace(day=1)
    nxt = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else (first.replace(month=first.month + 1))
    )
    return Span(_midnight(first), _midnight(nxt))


def units_ahead(now: datetime, unit: Unit, ahead: int) -> list[Span]:
    """This unit and the next ``ahead`` ones."""
    spans = [unit_of(now, unit)]
    for _ in range(ahead):
        spans.append(unit_of(spans[-1].hi, unit))
    return spans


def uncovered(want: Span, have: Iterable[Span]) -> list[Span]:
    """The parts of ``want`` no span of ``have`` covers, in order."""
    parts = [want]
    for h in sorted(have):
        nxt: list[Span] = []
        for p in parts:
            if h.hi <= p.lo or h.lo >= p.hi:
                nxt.append(p)
                continue
            if p.lo < h.lo:
                nxt.append(Span(p.lo, h.lo))
            if h.hi < p.hi:
                nxt.append(Span(h.hi, p.hi))
        parts = nxt
    return parts


def parse_name(name: str) -> Span | None:
    match = _NAME_RE.match(name)
    if match is None:
        return None
    lo, hi = (datetime.strptime(g, "%Y%m%d").replace(tzinfo=UTC) for g in match.groups())
    return Span(lo, hi)


async def existing(conn: asyncpg.Connection, schema: str) -> list[Span]:
    """usage_log's partitions, oldest first."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass($1)",
        f"{schema}.usage_log",
    )
    return sorted(s for r in rows if (s := parse_name(r["relname"])) is not None)


class Partitions:
    """What one metering process knows of usage_log's partitions (a cache of their spans)."""

    def __init__(self, schema: str, unit: Unit, ahead: int, retention_days: int | None) -> None:
        self.schema = schema
        self.unit: Unit = unit
        self.ahead = ahead
        self.retention_days = retention_days
        self._known: list[Span] | None = None
        self._lock_id = advisory_lock_id("usage-partitions", schema)

    def horizon(self, now: datetime) -> datetime | None:
        """Raw rows that started before this may be gone (None: kept forever)."""
        if self.retention_days is None:
            return None
        return now - timedelta(days=self.retention_days)

    async def _create(self, conn: asyncpg.Connection, wanted: Iterable[Span]) -> list[str]:
        """Create what ``wanted`` needs that no partition covers (under a lock per schema,
        in the caller's transaction if it has one)."""
        made: list[str] = []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_id)
            have = await existing(conn, self.schema)
            for want in wanted:
                for part in uncovered(want, have):
                    await conn.fetchval(
                        f"SELECT {self.schema}.usage_log_create_partition($1, $2)",
                        part.lo,
                        part.hi,
                    )
                    have.append(part)
                    made.append(part.name)
        if not conn.is_in_transaction():  # committed: what the cache says is true
            self._known = sorted(have)
        if made:
            log.info("usage_log partitions created: %s", ", ".join(made))
        return made

    async def ensure_ahead(self, conn: asyncpg.Connection, now: datetime) -> list[str]:
        """The periodic task: partitions for this unit and the next ``ahead``."""
        return await self._create(conn, units_ahead(now, self.unit, self.ahead))

    def missing(self, moments: Iterable[datetime], now: datetime) -> list[Span]:
        """The units ``moments`` fall in that no partition known to this process covers,
        except those before the retention horizon (such a record is refused and set aside)."""
        known = self._known or []  # sorted, never overlapping
        starts = [s.lo for s in known]
        horizon = self.horizon(now)
        found: set[Span] = set()
        for moment in moments:
            at = bisect_right(starts, moment) - 1  # the last partition starting at or before
            if at >= 0 and moment < known[at].hi:
                continue
            span = unit_of(moment, self.unit)
            if horizon is None or span.hi > horizon:
                found.add(span)
        return sorted(found)

    async def ensure_for(
        self, conn: asyncpg.Connection, moments: Iterable[datetime], now: datetime
    ) -> list[str]:
        """Ingest: partitions for every record's ``started_at`` that has none (see
        :meth:`missing`). Call it outside the batch's transaction, so that a batch rolled
        back keeps the partitions it made (and this process's cache stays true)."""
        wanted = self.missing(moments, now)
        return await self._create(conn, wanted) if wanted else []

    async def drop_expired(self, conn: asyncpg.Connection, now: datetime) -> list[str]:
        """Retention: drop every partition that ends at or before the horizon."""
        horizon = self.horizon(now)
        if horizon is None:
            return []
        dropped: list[str] = []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_id)
            await conn.execute("SET LOCAL lock_timeout = '5s'")
            for span in await existing(conn, self.schema):
                if span.hi <= horizon:
                    await conn.execute(f"DROP TABLE {self.schema}.{span.name}")
                    dropped.append(span.name)
        self._known = None
        if dropped:
            log.info(
                "usage retention (%s days): dropped %s", self.retention_days, ", ".join(dropped)
            )
        return dropped

    async def spans(self, conn: asyncpg.Connection) -> list[Span]:
        return await existing(conn, self.schema)

    async def raw_since(self, conn: asyncpg.Connection) -> datetime | None:
        """Where the raw log begins: the lower bound of the oldest partition."""
        spans = await existing(conn, self.schema)
        return spans[0].lo if spans else None

    async def maintain(self, conn: asyncpg.Connection, now: datetime) -> None:
        """One scheduled round: create ahead, then drop what retention no longer keeps."""
        await self.ensure_ahead(conn, now)
        await self.drop_expired(conn, now)
