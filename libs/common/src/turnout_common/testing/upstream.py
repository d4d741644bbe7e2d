"""A programmable OpenAI-compatible upstream (chat, completions, embeddings, models, health).

Token counts are deterministic so tests can check metering exactly: prompt tokens = words in
all message contents + 3 per message; completion tokens = words in the reply.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from turnout_common.testing.servers import LocalServer


def count_words(text: str) -> int:
    return len(text.split())


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for msg in messages:
        content = msg.get("content") or ""
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        total += count_words(str(content)) + 3
    return total


def example_for(schema: dict[str, Any]) -> Any:
    """A value matching a JSON schema (objects with every property), for tool arguments and
    structured output: strings ``"Paris"``, numbers 1, booleans true, arrays of one item."""
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        return {k: example_for(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example_for(schema.get("items") or {"type": "string"})]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if schema.get("anyOf"):
        return example_for(schema["anyOf"][0])
    return "Paris"


def structured_reply(response_format: Any) -> str | None:
    """JSON mode: ``{"answer": ...}``; a JSON schema: an instance of it; else None."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return '{"answer": "Paris"}'
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return orjson.dumps(example_for(schema)).decode()
    return None


@dataclass
class UpstreamBehaviour:
    """What the fake does next; tests change these fields while it runs."""

    status: int = 200
    error_body: dict[str, Any] | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    reply: str = "Hello from the fake upstream, how can I help"
    retry_after: str | None = None
    api_key: str | None = None
    tool_call: bool = False


@dataclass
class FakeOpenAI:
    """State + handlers of one fake OpenAI-compatible server."""

    name: str = "fake"
    behaviour: UpstreamBehaviour = field(default_factory=UpstreamBehaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    """GET requests (model lists, health checks): path and headers."""
    served: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/v1/chat/completions", "/chat/completions"):
            app.router.add_post(path, self.chat)
        for path in ("/v1/completions", "/completions"):
            app.router.add_post(path, self.completions)
        for path in ("/v1/embeddings", "/embeddings"):
            app.router.add_post(path, self.embeddings)
        for path in ("/v1/responses", "/responses"):
            app.router.add_post(path, self.responses)
        for path in ("/v1/models", "/models"):
            app.router.add_get(path, self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/api/tags", self.ollama_tags)
        return app

    def _probed(self, request: web.Request) -> None:
        self.probes.append({"path": request.path, "headers": dict(request.headers)})

    async def _gate(self, request: web.Request) -> web.Response | None:
        b = self.behaviour
        if b.api_key is not None and request.headers.get("Authorization") != f"Bearer {b.api_key}":
            return web.json_response(
                {
                    "error": {
                        "message": "bad key",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.status != 200:
            headers = {"Retry-After": b.retry_after} if b.retry_after else None
            body = b.error_body or {
                "error": {
                    "message": f"{self.name} failed with {b.status}",
                    "type": "server_error",
                    "code": None,
                }
            }
            return web.json_response(body, status=b.status, headers=headers)
        return None

    async def _accept(self, request: web.Request) -> tuple[Any, web.Response | None]:
        """A call's JSON body, recorded in ``requests``, and the gate's answer: None when it is
        to be served (and counted in ``served``)."""
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        denied = await self._gate(request)
        if denied is None:
            self.served += 1
        return body, denied

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, denied = await self._accept(request)
        if denied is not None:
            return denied
        p_tokens = prompt_tokens(body.get("messages", []))
        reply = structured_reply(body.get("response_format")) or self.behaviour.reply
        words = reply.split()
        c_tokens = len(words)
        usage = {
            "prompt_tokens": p_tokens,
            "completion_tokens": c_tokens,
            "total_tokens": p_tokens + c_tokens,
        }
        rid, created, model = f"chatcmpl-{self.served}", int(time.time()), body.get("model")
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply}
            finish = "stop"
            if self.behaviour.tool_call and body.get("tools"):
                fn = body["tools"][0]["function"]
                args = example_for(fn.get("parameters") or {}) or {"city": "Paris"}
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": fn["name"],
                                "arguments": json.dumps(args),
                            },
                        }
                    ],
                }
                finish = "tool_calls"
            return web.json_response(
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def emit(chunk: dict[str, Any]) -> None:
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
        await emit(
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        )
        for i, word in enumerate(words):
            if self.behaviour.chunk_delay_s:
                await asyncio.sleep(self.behaviour.chunk_delay_s)
            text = word if i == 0 else " " + word
            await emit({**base, "choices": [{"index": 0, "delta": {"content": text}}]})
        await emit({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await emit({**base, "choices": [], "usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def responses(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's Responses API, text only: input tokens = words of ``instructions`` and of
        the input's texts + 3 per item; output tokens = words in the reply."""
        body, denied = await self._accept(request)
        if denied is not None:
            return denied
        raw = body.get("input")
        items = [{"content": raw}] if isinstance(raw, str) else list(raw or [])
        if body.get("instructions"):
            items.append({"content": body["instructions"]})
        texts = [
            {"content": [{"text": p.get("text", "")} for p in c] if isinstance(c, list) else c}
            for c in (i.get("content") or i.get("output") or "" for i in items)
        ]
        words = self.behaviour.reply.split()
        usage = {
            "input_tokens": prompt_tokens(texts),
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(words),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens(texts) + len(words),
        }
        rid, mid = f"resp_fake{self.served}", f"msg_fake{self.served}"
        text = " ".join(words)
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"type": "message", "id": mid, "status": "completed", "role": "assistant"}
        done = {
            "id": rid,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body.get("model"),
            "output": [{**item, "content": [part]}],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "store": body.get("store", True),
            "usage": usage,
        }
        if not body.get("stream"):
            return web.json_response(done)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        seq = iter(range(1000))

        async def emit(kind: str, data: dict[str, Any]) -> None:
            event = {"type": kind, **data, "sequence_number": next(seq)}
            await resp.write(f"event: {kind}\ndata: ".encode() + orjson.dumps(event) + b"\n\n")

        start = {**done, "status": "in_progress", "output": [], "usage": None}
        await emit("response.created", {"response": start})
        await emit("response.in_progress", {"response": start})
        await emit(
            "response.output_item.added", {"output_index": 0, "item": {**item, "content": []}}
        )
        where = {"item_id": mid, "output_index": 0, "content_index": 0}
        await emit("response.content_part.added", {**where, "part": {**part, "text": ""}})
        for i, word in enumerate(words):
            await emit(
                "response.output_text.delta", {**where, "delta": word if i == 0 else " " + word}
            )
        await emit("response.output_text.done", {**where, "text": text})
        await emit("response.content_part.done", {**where, "part": part})
        await emit("response.output_item.done", {"output_index": 0, "item": done["output"][0]})
        await emit("response.completed", {"response": done})
        await resp.write_eof()
        return resp

    async def completions(self, request: web.Request) -> web.Response:
        body, denied = await self._accept(request)
        if denied is not None:
            return denied
        prompt = body.get("prompt", "")
        p_tokens = count_words(prompt if isinstance(prompt, str) else " ".join(prompt))
        c_tokens = count_words(self.behaviour.reply)
        return web.json_response(
            {
                "id": f"cmpl-{self.served}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "text": self.behaviour.reply, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": p_tokens,
                    "completion_tokens": c_tokens,
                    "total_tokens": p_tokens + c_tokens,
                },
            }
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        body, denied = await self._accept(request)
        if denied is not None:
            return denied
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        tokens = sum(count_words(str(i)) for i in inputs)
        return web.json_response(
            {
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1)] * 8}
                    for i in range(len(inputs))
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        self._probed(request)
        if (denied := await self._gate(request)) is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": "fake-small", "object": "model", "owned_by": self.name},
                    {"id": "fake-large", "object": "model", "owned_by": self.name},
                ],
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        self._probed(request)
        if (denied := await self._gate(request)) is not None:
            return denied
        return web.json_response({"status": "ok"})

    async def ollama_tags(self, request: web.Request) -> web.Response:
        self._probed(request)
        if (denied := await self._gate(request)) is not None:
            return denied
        return web.json_response({"models": [{"name": "fake-small"}, {"name": "fake-large"}]})


def start_fake_openai(
    name: str = "fake", port: int | None = None
) -> tuple[FakeOpenAI, LocalServer]:
    """Start a fake on a free port; ``server.url + "/v1"`` is its OpenAI base URL."""
    fake = FakeOpenAI(name=name)
    server = LocalServer(fake.app, port=port).start()
    return fake, server
