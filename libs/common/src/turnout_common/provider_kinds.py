"""Every provider kind in one table: where its API lives, how its key is sent, how it is probed.

Config-api validates and describes kinds with it (``kinds.py``, ``probes.py``), the
health-worker probes with it, the router's adapters take their default URLs and auth from it,
and the console fills its select from it. Adding a provider kind means one row here and, only
if its wire protocol is new, one adapter in ``services/router/.../adapters/``.

URL conventions (each official SDK's ``base_url``):

* ``api``: a cloud API's base URL, paths appended as they are (``https://api.openai.com/v1``).
* ``v1``: a self-hosted OpenAI-compatible server; the base URL must end with ``/v1``.
* ``root``: the server's root; the API lives below it (Ollama, llama.cpp, Anthropic, Gemini,
  Cohere), so a base URL ending in one of ``root_suffixes`` is cut back to the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

WireProtocol = Literal["openai", "anthropic", "google", "cohere"]
ModelList = Literal["openai", "ollama", "google", "cohere"]
UrlConvention = Literal["api", "v1", "root"]

ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class Probe:
    """One GET of a kind's probe: ``path`` below the server root (``root``) or the base URL."""

    path: str
    anchor: Literal["root", "base"] = "root"


@dataclass(frozen=True, slots=True)
class ProviderKind:
    name: str
    protocol: WireProtocol
    """the wire protocol, i.e. which router adapter speaks to it"""
    default_base_url: str | None
    """None: the provider must be given a base_url"""
    convention: UrlConvention = "api"
    root_suffixes: tuple[str, ...] = ()
    """version segments a given base_url may end with, cut to reach the server root"""
    self_hosted: bool = False
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    api_version: tuple[str, str] | None = None
    """a header every request carries (Anthropic's ``anthropic-version``)"""
    openai_prefix: str = ""
    """where the OpenAI-compatible API lives below a root base_url (Ollama, llama.cpp)"""
    stream_usage_option: bool = True
    """takes ``stream_options.include_usage`` (Mistral refuses it)"""
    probes: tuple[Probe, ...] = (Probe("/models", "base"),)
    """the GETs that check it, in order; the last one lists its models"""
    model_list: ModelList = "openai"
    example: str | None = None

    @property
    def byok_capable(self) -> bool:
        """Cloud kinds, where each user has an account and a key of their own."""
        return not self.self_hosted

    @property
    def auth_style(self) -> str:
        """How the key is sent, in words (``Authorization: Bearer header``)."""
        prefix = self.auth_prefix.strip()
        return f"{self.auth_header}: {prefix} header" if prefix else f"{self.auth_header} header"

    def auth_headers(self, key: str | None) -> dict[str, str]:
        """The headers that carry ``key`` (and the API version), for a probe or a request."""
        headers = dict([self.api_version]) if self.api_version else {}
        if key:
            headers[self.auth_header] = self.auth_prefix + key
        return headers

    def server_root(self, base_url: str) -> str:
        url = base_url.rstrip("/")
        for suffix in (*self.root_suffixes, *((self.openai_prefix,) if self.openai_prefix else ())):
            if url.endswith(suffix):
                return url[: -len(suffix)]
        return url

    def probe_requests(
        self, base_url: str | None, key: str | None
    ) -> list[tuple[str, dict[str, str]]]:
        """(URL, headers) of each probe GET, in order; raises ValueError without a base URL."""
        base = (base_url or self.default_base_url or "").rstrip("/")
        if not base:
            raise ValueError(f"a {self.name} provider needs a base_url to be probed")
        root = self.server_root(base)
        headers = self.auth_headers(key)
        return [((root if p.anchor == "root" else base) + p.path, headers) for p in self.probes]

    def model_ids(self, body: Any) -> list[str]:
        """The model ids in the answer of the last probe (its model list)."""
        if not isinstance(body, dict):
            return []
        if self.model_list == "openai":
            items = body.get("data", [])
            key = "id"
        else:
            items = body.get("models", [])
            key = "name"
        ids = [str(m.get(key)) for m in items if isinstance(m, dict) and m.get(key)]
        return [i.removeprefix("models/") for i in ids] if self.model_list == "google" else ids


def _cloud(name: str, url: str, **kw: Any) -> ProviderKind:
    return ProviderKind(name, "openai", url, **kw)


KINDS: dict[str, ProviderKind] = {
    k.name: k
    for k in (
        ProviderKind(
            "vllm", "openai", None, convention="v1", root_suffixes=("/v1",), self_hosted=True,
            probes=(Probe("/health"), Probe("/v1/models")), example="http://gpu-box:8000/v1",
        ),
        ProviderKind(
            "ollama", "openai", "http://127.0.0.1:11434", convention="root",
            root_suffixes=("/v1", "/api"), self_hosted=True, openai_prefix="/v1",
            probes=(Probe("/api/tags"),), model_list="ollama",
        ),
        ProviderKind(
            "llamacpp", "openai", None, convention="root", root_suffixes=("/v1",),
            self_hosted=True, openai_prefix="/v1", probes=(Probe("/health"), Probe("/v1/models")),
            example="http://127.0.0.1:8080",
        ),
        ProviderKind(
            "openai_compatible", "openai", None, convention="v1", self_hosted=True,
            example="http://my-server:8080/v1",
        ),
        _cloud("openai", "https://api.openai.com/v1"),
        ProviderKind(
            "anthropic", "anthropic", "https://api.anthropic.com", convention="root",
            root_suffixes=("/v1",), auth_header="x-api-key", auth_prefix="",
            api_version=("anthropic-version", ANTHROPIC_VERSION), probes=(Probe("/v1/models"),),
        ),
        ProviderKind(
            "google", "google", "https://generativelanguage.googleapis.com", convention="root",
            root_suffixes=("/v1beta", "/v1"), auth_header="x-goog-api-key", auth_prefix="",
            probes=(Probe("/v1beta/models"),), model_list="google",
        ),
        ProviderKind(
            "cohere", "cohere", "https://api.cohere.com", convention="root",
            root_suffixes=("/v2", "/v1"), probes=(Probe("/v1/models"),), model_list="cohere",
        ),
        _cloud("openrouter", "https://openrouter.ai/api/v1"),
        _cloud("groq", "https://api.groq.com/openai/v1"),
        _cloud("together", "https://api.together.xyz/v1"),
        _cloud("mistral", "https://api.mistral.ai/v1", stream_usage_option=False),
        _cloud("fireworks", "https://api.fireworks.ai/inference/v1"),
    )
}  # fmt: skip
"""Every provider kind, in the order they are listed to people."""


def kind(name: str) -> ProviderKind:
    """The row of ``name``; an unknown name is treated as a generic OpenAI-compatible server."""
    return KINDS.get(name) or KINDS["openai_compatible"]
