"""The testing lab's stream: one chat request to the router (``stream: true``, sent as
``x-turnout-source: lab``) relayed to the browser as it arrives, as Server-Sent Events of the
console's own: ``meta`` (request id, model, provider, route), ``delta`` (text), ``done``
(tokens, latency, time to first token) or ``error``. Text is sent as JSON strings and the
page inserts it as text, never as markup."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from turnout_console.client import ApiClient

ANSWER_HEADERS = {
    "request_id": "x-request-id",
    "model": "x-turnout-model",
    "provider": "x-turnout-provider",
    "route": "x-turnout-route",
}


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _message(status: int, raw: bytes) -> str:
    """The router's error message (OpenAI error shape), else the status."""
    try:
        err = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        err = None
    if isinstance(err, dict) and err.get("message"):
        return f"{err['message']} (HTTP {status})"
    return f"the router answered HTTP {status}"


def _texts(chunk: dict[str, Any]) -> list[str]:
    out = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            out.append(text)
    return out


async def relay(
    client: ApiClient, credential: str, body: dict[str, Any], headers: dict[str, str]
) -> AsyncIterator[bytes]:
    t0 = time.perf_counter()

    def ms() -> float:
        return round((time.perf_counter() - t0) * 1000, 1)

    try:
        async with client.open_stream(
            "router", "/v1/chat/completions", credential, json=body, headers=headers
        ) as resp:
            meta = {k: resp.headers.get(h) for k, h in ANSWER_HEADERS.items()}
            if resp.status != 200:
                yield event("error", {"message": _message(resp.status, await resp.read()), **meta})
                return
            yield event("meta", meta)
            ttft: float | None = None
            usage: dict[str, Any] = {}
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(chunk.get("error"), dict):
                    msg = str(chunk["error"].get("message") or "the stream broke")
                    yield event("error", {"message": msg, **meta})
                    return
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                for text in _texts(chunk):
                    if ttft is None:
                        ttft = ms()
                    yield event("delta", {"text": text})
            yield event(
                "done",
                {
                    **meta,
                    "input_tokens": usage.get("prompt_tokens"),
                    "output_tokens": usage.get("completion_tokens"),
                    "latency_ms": ms(),
                    "ttft_ms": ttft,
                },
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        # never the URL or the credential: the kind of failure only
        yield event("error", {"message": f"the router did not answer ({type(exc).__name__})"})
