"""Provider kinds as config-api accepts them: the facts are turnout_common.provider_kinds's
table; here the API's enum, the base URL rules and the BYOK rule."""

from __future__ import annotations

from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from turnout_common.errors import ValidationFailed
from turnout_common.provider_kinds import KINDS as PROVIDER_KINDS

ProviderKind = Literal[
    "vllm",
    "ollama",
    "llamacpp",
    "openai_compatible",
    "openai",
    "anthropic",
    "google",
    "cohere",
    "openrouter",
    "groq",
    "together",
    "mistral",
    "fireworks",
]
KINDS: tuple[str, ...] = get_args(ProviderKind)
assert KINDS == tuple(PROVIDER_KINDS), "ProviderKind must list turnout_common.provider_kinds"
BYOK_CAPABLE = frozenset(k for k in KINDS if PROVIDER_KINDS[k].byok_capable)
"""Kinds an admin may open to BYOK (``byok_enabled`` on a provider): cloud APIs, where each
user has an account and a key of their own; a self-hosted server has one operator."""


def describe_kinds() -> list[dict[str, Any]]:
    """Every provider kind: default URL, how its key is sent, whether users may bring a key."""
    return [
        {
            "kind": k.name,
            "default_base_url": k.default_base_url,
            "base_url_example": k.example,
            "self_hosted": k.self_hosted,
            "auth": k.auth_style,
            "key_required": not k.self_hosted,
            "byok_capable": k.byok_capable,
        }
        for k in PROVIDER_KINDS.values()
    ]


def check_byok(kind: str, byok_enabled: bool) -> None:
    if byok_enabled and kind not in BYOK_CAPABLE:
        raise ValidationFailed(
            f"kind {kind!r} cannot be opened to BYOK (users' own keys): only cloud kinds can "
            f"({', '.join(sorted(BYOK_CAPABLE))})",
            param="byok_enabled",
        )


def resolve_base_url(kind: str, base_url: str | None) -> str:
    """The base URL to store: the given one (validated, no trailing slash) or the default."""
    if not base_url:
        default = PROVIDER_KINDS[kind].default_base_url
        if default is None:
            raise ValidationFailed(
                f"base_url is required for kind {kind!r} "
                f"(e.g. {PROVIDER_KINDS[kind].example or 'http://host:port'})",
                param="base_url",
            )
        return default
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            f"base_url {base_url!r} is not an http(s) URL with a host "
            "(e.g. http://127.0.0.1:8000/v1)",
            param="base_url",
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(
            "base_url must not carry credentials (user:password@host): set the provider's "
            "api_key instead (it is stored encrypted)",
            param="base_url",
        )
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise ValidationFailed(
            "base_url must not contain spaces or control characters", param="base_url"
        )
    if parts.query or parts.fragment:
        raise ValidationFailed("base_url must not have a query or fragment", param="base_url")
    if PROVIDER_KINDS[kind].convention == "v1" and not parts.path.endswith("/v1"):
        raise ValidationFailed(
            f"base_url for kind {kind!r} must end with /v1 like the OpenAI SDK's base_url "
            f"(e.g. {PROVIDER_KINDS[kind].example}); got {base_url!r}",
            param="base_url",
        )
    return url
