"""Forms with many fields, each declared once: what the browser posts (FastAPI reads it with
``Annotated[RuleForm, Form()]``) and the body config-api takes from it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Form
from pydantic import BaseModel

from turnout_console.forms import (
    Checkbox,
    ContextWindow,
    Ident,
    Name,
    Number,
    PowerLevel,
    Secret,
    price,
    whole_number,
)

Whole = Annotated[str, Form(max_length=12)]
"""A whole number typed as text (parsed by :func:`whole_number`)."""
Match = Annotated[str, Form(max_length=200)]
"""A rule's optional match value (blank: anything)."""


class _Form(BaseModel):
    def whole_numbers(self, *fields: str) -> dict[str, int | None]:
        """These fields as whole numbers (blank: None); a bad one is a 422 naming it."""
        return {f: whole_number(getattr(self, f), f) for f in fields}


class RuleForm(_Form):
    """A routing rule's dialog: a new rule without ``rule_id``."""

    name: Name
    targets: Annotated[str, Form(min_length=1, max_length=4000)]
    rule_id: Annotated[str, Form(max_length=200)] = ""
    priority: Whole = "100"
    weight: Whole = "1"
    enabled: Checkbox = ""
    power_level: PowerLevel = ""
    tier: Match = ""
    task_type: Match = ""
    model: Match = ""
    min_tokens: Whole = ""
    max_tokens: Whole = ""
    requires_byok: Checkbox = ""

    def body(self) -> dict[str, Any]:
        """The rule as config-api takes it: blank match fields are ``null`` (match
        anything); config-api validates every value."""
        names = [t.strip() for t in self.targets.replace("\n", ",").split(",") if t.strip()]
        return {
            "name": self.name.strip(),
            "priority": whole_number(self.priority, "priority") or 0,
            "weight": whole_number(self.weight, "weight") if self.weight.strip() else 1,
            "enabled": self.enabled == "on",
            "power_level": self.power_level or None,
            "tier": self.tier.strip() or None,
            "task_type": self.task_type.strip() or None,
            "model": self.model.strip() or None,
            **self.whole_numbers("min_tokens", "max_tokens"),
            "requires_byok": self.requires_byok == "on",
            "targets": names,
        }


class TierForm(_Form):
    """A tier's row: every field, so a PUT keeps what the row shows (blank limits: none)."""

    name: Ident
    rank: Number = "0"
    monthly_credits_usd: Number = "0"
    rpm_limit: Number = ""
    tpm_limit: Number = ""
    max_keys: Number = ""
    lab_monthly_quota: Number = ""
    byok_fee_pct: Number = "0"

    def body(self) -> dict[str, Any]:
        return {
            "rank": whole_number(self.rank, "rank") or 0,
            "monthly_credits_usd": self.monthly_credits_usd.strip() or "0",
            **self.whole_numbers("rpm_limit", "tpm_limit", "max_keys", "lab_monthly_quota"),
            "byok_fee_pct": self.byok_fee_pct.strip() or "0",
        }


class ProviderForm(_Form):
    """A new provider: a blank URL is the kind's default."""

    name: Name
    kind: Annotated[str, Form(max_length=40)]
    base_url: Annotated[str, Form(max_length=2000)] = ""
    api_key: Secret = ""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name.strip(), "kind": self.kind}
        if self.base_url.strip():
            body["base_url"] = self.base_url.strip()
        if self.api_key:
            body["api_key"] = self.api_key
        return body


class ProviderEditForm(ProviderForm):
    """A provider's edit dialog: a typed key replaces the stored one, a blank keeps it."""

    enabled: Checkbox = ""

    def body(self) -> dict[str, Any]:
        return super().body() | {"enabled": self.enabled == "on"}


def _priced(input_price: str, output_price: str, context_window: int | None) -> dict[str, Any]:
    """A model's prices per 1M tokens and, when given, its context window."""
    body: dict[str, Any] = {
        "input_price_per_mtok": price(input_price, "input_price"),
        "output_price_per_mtok": price(output_price, "output_price"),
    }
    if context_window:
        body["context_window"] = context_window
    return body


class ModelForm(_Form):
    """A new model: a blank name is the upstream one."""

    provider: Name
    upstream_model: Annotated[str, Form(min_length=1, max_length=300)]
    name: Annotated[str, Form(max_length=200)] = ""
    purpose: Annotated[Literal["chat", "embeddings", "reranking"], Form()] = "chat"
    input_price: Number = "0"
    output_price: Number = "0"
    context_window: ContextWindow = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "provider": self.provider,
            "upstream_model": self.upstream_model.strip(),
            "purposes": [self.purpose],
        }
        if self.name.strip():
            body["name"] = self.name.strip()
        return body | _priced(self.input_price, self.output_price, self.context_window)


class ModelEditForm(_Form):
    """A model's edit dialog, sent as a PATCH of every field it shows."""

    name: Name
    purposes: Annotated[list[Literal["chat", "completion", "embeddings", "reranking"]], Form()]
    input_price: Number = "0"
    output_price: Number = "0"
    context_window: ContextWindow = None
    power_level: PowerLevel = ""
    fallbacks: Annotated[str, Form(max_length=4000)] = ""
    enabled: Checkbox = ""
    deprecated: Checkbox = ""

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name.strip(),
            "purposes": self.purposes,
            "power_level": self.power_level or None,
            "fallbacks": [f.strip() for f in self.fallbacks.split(",") if f.strip()],
            "enabled": self.enabled == "on",
            "deprecated": self.deprecated == "on",
        } | _priced(self.input_price, self.output_price, self.context_window)
