"""``/api/v1/usage``: listing with filters and pagination, CSV export, summaries."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from turnout_common.errors import BadRequest
from turnout_common.web import MAX_OFFSET
from turnout_metering.deps import PrincipalDep, RuntimeDep, scoped_user
from turnout_metering.schemas import GroupBy, UsagePage, UsageRecord, UsageSummary
from turnout_metering.usage import queries
from turnout_metering.usage.queries import UsageFilter

router = APIRouter(prefix="/api/v1", tags=["usage"])

Outcome = Literal["success", "upstream_error", "rejected", "client_abort", "error", "router_crash"]
CSV_MAX = 100_000
PROVIDER_FILTER = (
    "provider id, or a name it was recorded under: by id, all of the provider's usage"
    " whatever its name was then; by name, the usage recorded under that name (an earlier"
    " name of a renamed provider too)"
)


def usage_filter(
    principal: PrincipalDep,
    user_id: str | None = None,
    key_id: str | None = None,
    model: str | None = None,
    provider: Annotated[str | None, Query(description=PROVIDER_FILTER)] = None,
    source: str | None = None,
    outcome: Outcome | None = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
) -> UsageFilter:
    return UsageFilter(
        user_id=scoped_user(principal, user_id),
        key_id=key_id,
        model=model,
        provider=provider,
        source=source,
        outcome=outcome,
        status=status,
    )


FilterDep = Annotated[UsageFilter, Depends(usage_filter)]


def to_csv(records: list[UsageRecord]) -> str:
    out = io.StringIO()
    names = [n for n in UsageRecord.model_fields if n != "attempts"]
    writer = csv.writer(out)
    writer.writerow(names)
    for rec in records:
        row = rec.model_dump(mode="json")
        writer.writerow(["" if row[n] is None else row[n] for n in names])
    return out.getvalue()


RAW_SINCE = "x-turnout-raw-since"


class Retention(BaseModel):
    retention_days: int | None = Field(
        description="TURNOUT_USAGE_RETENTION_DAYS: raw rows older are dropped (null: kept)"
    )
    partition: Literal["month", "day"] = Field(description="TURNOUT_USAGE_PARTITION")
    raw_since: datetime | None = Field(
        description="the raw usage rows (GET /usage, CSV) go back to here; summaries and"
        " credits (rollups, ledger) go back to the start whatever the retention"
    )
    partitions: int


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing's window and page: ``from``, ``to``, ``limit``, ``offset``, ``format``."""

    start: datetime | None
    end: datetime | None
    limit: int
    offset: int
    fmt: Literal["json", "csv"]


def listing(
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=CSV_MAX)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Listing:
    return Listing(start, end, limit, offset, fmt)


ListingDep = Annotated[Listing, Depends(listing)]


async def list_usage(
    runtime: RuntimeDep, f: UsageFilter, page: Listing, response: Response | None = None
) -> UsagePage | Response:
    start, end, limit, offset, fmt = page.start, page.end, page.limit, page.offset, page.fmt
    if start is not None and end is not None and end <= start:
        raise BadRequest("'to' must be after 'from'", param="to")
    if fmt == "json" and limit > 1000:
        raise BadRequest("limit is at most 1000 for JSON (use format=csv to export)", param="limit")
    async with runtime.pool.acquire() as conn:
        rows, total = await queries.list_usage(conn, f, start, end, limit, offset)
        since = await runtime.partitions.raw_since(conn)
    records = [UsageRecord.model_validate(dict(r)) for r in rows]
    raw_since = {RAW_SINCE: since.isoformat()} if since is not None else {}
    if fmt == "csv":
        return Response(
            to_csv(records),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": 'attachment; filename="usage.csv"',
                "x-total-count": str(total),
                **raw_since,
            },
        )
    if response is not None:
        response.headers.update(raw_since)
    return UsagePage(data=records, total=total, limit=limit, offset=offset)


@router.get("/usage/retention", response_model=Retention)
async def get_retention(runtime: RuntimeDep, _: PrincipalDep) -> Retention:
    """How far back the raw usage rows go (``x-turnout-raw-since`` on every ``GET /usage``
    says the same): older partitions are dropped after TURNOUT_USAGE_RETENTION_DAYS."""
    async with runtime.pool.acquire() as conn:
        spans = await runtime.partitions.spans(conn)
    s = runtime.settings
    return Retention(
        retention_days=s.usage_retention_days,
        partition=s.usage_partition,
        raw_since=spans[0].lo if spans else None,
        partitions=len(spans),
    )


@router.get("/usage", response_model=UsagePage)
async def get_usage(
    runtime: RuntimeDep,
    f: FilterDep,
    response: Response,
    page: ListingDep,
) -> UsagePage | Response:
    """Usage records, newest first. Users see only their own; ``format=csv`` exports.
    ``x-turnout-raw-since`` says how far back the raw rows go (retention)."""
    return await list_usage(runtime, f, page, response)


SummarySort = Literal["key", "-requests", "-cost"]


async def summarize(
    runtime: RuntimeDep,
    f: UsageFilter,
    group_by: GroupBy,
    start: date | None,
    end: date | None,
    sort: SummarySort = "key",
    limit: int | None = None,
) -> UsageSummary:
    if f.status is not None:
        raise BadRequest("summaries filter by outcome, not status", param="status")
    if start is not None and end is not None and end < start:
        raise BadRequest("'to' must not be before 'from'", param="to")
    async with runtime.pool.acquire() as conn:
        data, totals, groups = await queries.summary(
            conn, f, group_by, start, end, sort=sort, limit=limit
        )
    return UsageSummary.model_validate(
        {
            "group_by": group_by,
            "start": start,
            "end": end,
            "data": data,
            "totals": totals,
            "groups": groups,
        }
    )


@router.get("/usage/summary", response_model=UsageSummary)
async def get_summary(
    runtime: RuntimeDep,
    f: FilterDep,
    group_by: GroupBy = "model",
    start: Annotated[date | None, Query(alias="from", description="UTC day, inclusive")] = None,
    end: Annotated[date | None, Query(alias="to", description="UTC day, inclusive")] = None,
    sort: Annotated[
        SummarySort, Query(description="key (the default), or the most requests / cost first")
    ] = "key",
    limit: Annotated[
        int | None, Query(ge=1, le=10_000, description="at most this many groups (sorted)")
    ] = None,
) -> UsageSummary:
    """Requests, tokens, cost and latency percentiles per group, from the daily rollups.
    ``totals`` always covers every group; ``groups`` says how many there are (more than
    ``data`` holds when ``limit`` cut the list: e.g. ``sort=-cost&limit=25``, the top 25).

    ``group_by=provider``: one row per provider, keyed by the latest name its usage was
    recorded under (a renamed provider is one row, under its new name; its id if it never had
    a name); usage recorded without a provider id counts under the name it was recorded with.
    """
    return await summarize(runtime, f, group_by, start, end, sort, limit)
