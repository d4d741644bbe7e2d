"""Virtual keys (data plane) and BYOK provider keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_serializer

from turnout_config_api.schemas.common import ApiKey, Limit, ModelName, Money, Name, Strict


class KeyCreate(Strict):
    user_id: str = Field(min_length=1, max_length=64)
    name: str = Field("default", min_length=1, max_length=100)
    allowed_models: list[ModelName] | None = Field(None, description="null = every model")
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    budget_usd: Money | None = None
    expires_at: datetime | None = None


class KeyUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    allowed_models: list[ModelName] | None = None
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    budget_usd: Money | None = None
    expires_at: datetime | None = None


class KeyOut(BaseModel):
    id: str
    user_id: str
    name: str
    key_hint: str
    allowed_models: list[str] | None
    rpm_limit: int | None
    tpm_limit: int | None
    budget_usd: Decimal | None
    expires_at: datetime | None
    revoked: bool
    revision: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("budget_usd")
    def _ser(self, value: Decimal | None) -> str | None:
        return None if value is None else format(value.normalize(), "f")


class KeyCreated(KeyOut):
    key: str = Field(description="the secret; shown only in this response")


class ByokPut(Strict):
    api_key: ApiKey


class ByokOut(BaseModel):
    user_id: str
    provider_id: str
    provider_name: str
    api_key_hint: str
    revision: int
    created_at: datetime
    updated_at: datetime


class AdminTokenCreate(Strict):
    name: Name


class AdminTokenOut(BaseModel):
    id: str
    name: str
    revoked: bool
    created_by: str
    revision: int
    created_at: datetime


class AdminTokenCreated(AdminTokenOut):
    token: str = Field(description="the secret; shown only in this response")
