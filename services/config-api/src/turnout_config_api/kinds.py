"""Provider kinds: default base URLs (each official SDK's convention) and URL rules."""

from __future__ import annotations

from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from turnout_common.errors import ValidationFailed

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

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "google": "https://generativelanguage.googleapis.com",
    "cohere": "https://api.cohere.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "mistral": "https://api.mistral.ai/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "ollama": "http://127.0.0.1:11434",
}
SELF_HOSTED = frozenset({"vllm", "ollama", "llamacpp", "openai_compatible"})
AUTH_STYLES: dict[str, str] = {
    "anthropic": "x-api-key header",
    "google": "x-goog-api-key header",
}
"""How each kind sends its key (the rest: ``Authorization: Bearer``; self-hosted may need none)."""


def describe_kinds() -> list[dict[str, Any]]:
    """Every provider kind: default URL, how its key is sent, whether users may bring a key."""
    return [
        {
            "kind": kind,
            "default_base_url": DEFAULT_BASE_URLS.get(kind),
            "base_url_example": EXAMPLES.get(kind),
            "self_hosted": kind in SELF_HOSTED,
            "auth": AUTH_STYLES.get(kind, "Authorization: Bearer header"),
            "key_required": kind not in SELF_HOSTED,
            "byok_capable": kind in BYOK_CAPABLE,
        }
        for kind in KINDS
    ]


BYOK_CAPABLE = frozenset(KINDS) - SELF_HOSTED
"""Kinds an admin may open to BYOK (``byok_enabled`` on a provider): cloud APIs, where each
user has an account and a key of their own; a self-hosted server has one operator."""


def check_byok(kind: str, byok_enabled: bool) -> None:
    if byok_enabled and kind not in BYOK_CAPABLE:
        raise ValidationFailed(
            f"kind {kind!r} cannot be opened to BYOK (users' own keys): only cloud kinds can "
            f"({', '.join(sorted(BYOK_CAPABLE))})",
            param="byok_enabled",
        )


NEEDS_V1 = frozenset({"vllm", "openai_compatible"})
EXAMPLES = {
    "vllm": "http://gpu-box:8000/v1",
    "openai_compatible": "http://my-server:8080/v1",
    "llamacpp": "http://127.0.0.1:8080",
}


def resolve_base_url(kind: str, base_url: str | None) -> str:
    """The base URL to store: the given one (validated, no trailing slash) or the default."""
    if not base_url:
        default = DEFAULT_BASE_URLS.get(kind)
        if default is None:
            raise ValidationFailed(
                f"base_url is required for kind {kind!r} (e.g. {EXAMPLES.get(kind, 'http://host:port')})",
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
    if kind in NEEDS_V1 and not parts.path.endswith("/v1"):
        raise ValidationFailed(
            f"base_url for kind {kind!r} must end with /v1 like the OpenAI SDK's base_url "
            f"(e.g. {EXAMPLES[kind]}); got {base_url!r}",
            param="base_url",
        )
    return url


def server_root(base_url: str) -> str:
    """``http://host:8000/v1`` -> ``http://host:8000`` (for /health and Ollama's /api)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url
