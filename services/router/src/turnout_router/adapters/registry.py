"""Provider kind → adapter. Translation adapters load lazily and may be absent."""

from __future__ import annotations

import importlib
import logging

from turnout_common.provider_kinds import KINDS
from turnout_router.adapters.base import Adapter
from turnout_router.adapters.openai import ADAPTER as OPENAI
from turnout_router.adapters.openai import PROVIDERS

log = logging.getLogger(__name__)

_MODULES = {"anthropic": "anthropic", "google": "gemini", "cohere": "cohere"}
"""wire protocol (:mod:`turnout_common.provider_kinds`) → its adapter module"""
_cache: dict[str, Adapter | None] = {}


def adapter_for(kind: str) -> Adapter | None:
    """The adapter of a provider kind; None when the kind's module is not installed."""
    if kind in PROVIDERS:
        return OPENAI
    row = KINDS.get(kind)
    module = _MODULES.get(row.protocol) if row is not None else None
    if module is None:
        return OPENAI  # unknown kinds are treated as OpenAI-compatible servers
    if kind not in _cache:
        try:
            mod = importlib.import_module(f"turnout_router.adapters.{module}")
            _cache[kind] = mod.ADAPTER
        except (ImportError, AttributeError):
            log.warning("no adapter for provider kind %r yet", kind)
            _cache[kind] = None
    return _cache[kind]
