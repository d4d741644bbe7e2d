"""Shared field types and the paginated list envelope."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

T = TypeVar("T")

METADATA_MAX_BYTES = 64 * 1024
"""Free-form metadata travels in every config event of its entity: kept small."""


def _printable_ascii(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    if not all(" " < ch < "\x7f" for ch in raw):
        # never echo the value: it is a secret
        raise ValueError(
            "an API key is printable ASCII without spaces (no line breaks, tabs or "
            "non-ASCII characters): check what was pasted"
        )
    return value


def _small_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(orjson.dumps(value)) > METADATA_MAX_BYTES:
        raise ValueError(f"metadata is larger than {METADATA_MAX_BYTES // 1024} KB as JSON")
    return value


ApiKey = Annotated[
    SecretStr, Field(min_length=1, max_length=4000), AfterValidator(_printable_ascii)
]
"""A provider key: sent in an HTTP header, so printable ASCII only."""
Metadata = Annotated[dict[str, Any], AfterValidator(_small_metadata)]

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
RoutingStrategy = Literal["weighted", "least_busy", "latency"]
"""How a public name picks among its deployments of equal priority (README: routing)."""
TierName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error (a typo should not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """Every list answers in this envelope; an unpaginated list has ``limit == total``."""

    data: list[T]
    total: int
    limit: int
    offset: int

    @classmethod
    def whole(cls, items: list[T]) -> Page[T]:
        return cls(data=items, total=len(items), limit=len(items), offset=0)
