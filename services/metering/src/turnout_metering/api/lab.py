"""Testing-lab history and stats: usage with ``source=lab``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from turnout_common.web import MAX_OFFSET
from turnout_metering.api.usage import CSV_MAX, FilterDep, list_usage, summarize
from turnout_metering.deps import RuntimeDep
from turnout_metering.schemas import GroupBy, UsagePage, UsageSummary

router = APIRouter(prefix="/api/v1/lab", tags=["lab"])
LAB = "lab"


@router.get("/history", response_model=UsagePage)
async def lab_history(
    runtime: RuntimeDep,
    f: FilterDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=CSV_MAX)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> UsagePage | Response:
    """Testing-lab requests, newest first."""
    return await list_usage(runtime, replace(f, source=LAB), start, end, limit, offset, fmt)


@router.get("/stats", response_model=UsageSummary)
async def lab_stats(
    runtime: RuntimeDep,
    f: FilterDep,
    group_by: GroupBy = "model",
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> UsageSummary:
    """Testing-lab aggregates (requests, tokens, cost, latency percentiles) per group."""
    return await summarize(runtime, replace(f, source=LAB), group_by, start, end)
