"""Testing-lab history and stats: usage with ``source=lab``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from turnout_metering.api.usage import FilterDep, ListingDep, list_usage, summarize
from turnout_metering.deps import RuntimeDep
from turnout_metering.schemas import GroupBy, UsagePage, UsageSummary

router = APIRouter(prefix="/api/v1/lab", tags=["lab"])
LAB = "lab"


@router.get("/history", response_model=UsagePage)
async def lab_history(
    runtime: RuntimeDep,
    f: FilterDep,
    page: ListingDep,
) -> UsagePage | Response:
    """Testing-lab requests, newest first."""
    return await list_usage(runtime, replace(f, source=LAB), page)


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
