"""A small shipped price table (USD per 1M tokens, list prices as of 2026-11) used by discovery.

Models found by ``POST /providers/{id}/discover`` that are listed here are added enabled and
priced; others are added disabled until an admin sets their prices. Matching ignores a vendor
prefix (``openai/gpt-4o-mini`` on OpenRouter) and Gemini's ``models/`` prefix.
"""

from __future__ import annotations

from decimal import Decimal

AS_OF = "2026-11"

# upstream id -> (input, output, cached or None, context window)
PRICES: dict[str, tuple[str, str, str | None, int]] = {
    "gpt-4o": ("2.50", "10.00", "1.25", 128_000),
    "gpt-4o-mini": ("0.15", "0.60", "0.075", 128_000),
    "gpt-4.1": ("2.00", "8.00", "0.50", 1_047_576),
    "gpt-4.1-mini": ("0.40", "1.60", "0.10", 1_047_576),
    "gpt-4.1-nano": ("0.10", "0.40", "0.025", 1_047_576),
    "o3-mini": ("1.10", "4.40", "0.55", 200_000),
    "text-embedding-3-small": ("0.02", "0", None, 8_191),
    "text-embedding-3-large": ("0.13", "0", None, 8_191),
    "claude-3-5-haiku-latest": ("0.80", "4.00", "0.08", 200_000),
    "claude-3-5-sonnet-latest": ("3.00", "15.00", "0.30", 200_000),
    "claude-sonnet-4-20250514": ("3.00", "15.00", "0.30", 200_000),
    "gemini-2.0-flash": ("0.10", "0.40", "0.025", 1_048_576),
    "gemini-1.5-flash": ("0.075", "0.30", None, 1_048_576),
    "gemini-1.5-pro": ("1.25", "5.00", None, 2_097_152),
    "command-r": ("0.15", "0.60", None, 128_000),
    "command-r-plus": ("2.50", "10.00", None, 128_000),
    "mistral-small-latest": ("0.10", "0.30", None, 32_000),
    "mistral-large-latest": ("2.00", "6.00", None, 128_000),
    "llama-3.1-8b-instant": ("0.05", "0.08", None, 131_072),
    "llama-3.3-70b-versatile": ("0.59", "0.79", None, 131_072),
}


# capabilities declared for known model families (prefix of the id without vendor prefix);
# a request needing one not listed still passes through to the upstream
_FAMILY_CAPS: tuple[tuple[str, dict[str, bool]], ...] = (
    ("text-embedding", {}),
    ("gpt-4o", {"tools": True, "vision": True, "json_mode": True}),
    ("gpt-4.1", {"tools": True, "vision": True, "json_mode": True}),
    ("o3", {"tools": True, "json_mode": True}),
    ("claude-", {"tools": True, "vision": True}),
    ("gemini-", {"tools": True, "vision": True, "json_mode": True}),
    ("command-r", {"tools": True}),
    ("mistral-", {"tools": True, "json_mode": True}),
    ("llama-3", {"tools": True, "json_mode": True}),
)


def capabilities_for(upstream_model: str) -> dict[str, bool]:
    """The declared capabilities of a known model family ({} when unknown)."""
    name = upstream_model.removeprefix("models/").rsplit("/", 1)[-1].lower()
    for prefix, caps in _FAMILY_CAPS:
        if name.startswith(prefix):
            return {"streaming": True, **caps} if caps else {}
    return {}


def lookup(upstream_model: str) -> tuple[Decimal, Decimal, Decimal | None, int] | None:
    name = upstream_model.removeprefix("models/")
    entry = PRICES.get(name) or PRICES.get(name.rsplit("/", 1)[-1])
    if entry is None:
        return None
    inp, out, cached, ctx = entry
    return Decimal(inp), Decimal(out), Decimal(cached) if cached else None, ctx


def purposes_for(upstream_model: str) -> list[str]:
    lowered = upstream_model.lower()
    if "rerank" in lowered:
        return ["reranking"]
    if "embed" in lowered:
        return ["embeddings"]
    return ["chat"]
