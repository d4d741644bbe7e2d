"""Shared field types and the paginated list envelope."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="letters, digits, '.', '_' or '-'",
    ),
]
ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$",
        description="a public model name: letters, digits and . _ : / @ + -",
    ),
]
INT32_MAX = 2**31 - 1
Money = Annotated[Decimal, Field(ge=0, lt=Decimal("1e11"), decimal_places=9)]
Limit = Annotated[int, Field(gt=0, le=INT32_MAX)]
Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Weight = Annotated[int, Field(ge=0, le=1_000_000)]
Purpose = Literal["chat", "completion", "embeddings", "reranking"]
PowerLevel = Literal["eco", "balanced", "precision"]
TierName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error (a typo should not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    data: list[T]
    total: int
    limit: int
    offset: int
