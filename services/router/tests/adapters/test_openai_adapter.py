"""The OpenAI-compatible adapter's request targets: pure, no I/O."""

from __future__ import annotations

import orjson
import pytest

from turnout_router.adapters.base import UpstreamTarget
from turnout_router.adapters.openai import OpenAIAdapter


@pytest.mark.parametrize(
    ("kind", "base_url", "purpose", "url"),
    [
        # config-api stores Ollama's / llama.cpp's base_url as the server root (their SDKs'
        # convention); their OpenAI-compatible API is below /v1
        ("ollama", "http://127.0.0.1:11434", "chat", "http://127.0.0.1:11434/v1/chat/completions"),
        ("ollama", "http://gpu:11434/v1", "chat", "http://gpu:11434/v1/chat/completions"),
        ("llamacpp", "http://127.0.0.1:8080/", "embeddings", "http://127.0.0.1:8080/v1/embeddings"),
        ("llamacpp", "http://h:8080/v1", "completion", "http://h:8080/v1/completions"),
        ("vllm", "http://gpu:8000/v1", "chat", "http://gpu:8000/v1/chat/completions"),
        ("openai", "", "embeddings", "https://api.openai.com/v1/embeddings"),
        ("openai_compatible", "http://x:9/api/v1", "reranking", "http://x:9/api/v1/rerank"),
    ],
)
def test_request_url(kind: str, base_url: str, purpose: str, url: str) -> None:
    target = UpstreamTarget(kind, base_url, "up-model", "sk-test")
    req = OpenAIAdapter().prepare(purpose, {"model": "public"}, target, stream=False)  # type: ignore[arg-type]
    assert req.url == url
    assert orjson.loads(req.body)["model"] == "up-model"
    assert req.headers["Authorization"] == "Bearer sk-test"
