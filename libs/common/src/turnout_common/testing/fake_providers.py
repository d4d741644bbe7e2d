"""Programmable Anthropic-, Gemini- and Cohere-shaped upstreams (real aiohttp servers).

Same :class:`~turnout_common.testing.upstream.UpstreamBehaviour` as ``FakeOpenAI`` and the
same deterministic token counts so tests check metering exactly: prompt tokens = words in
every message's text + 3 per message (the system prompt counts as one message);
completion tokens = words in the reply. Each fake checks its provider's auth header when
``behaviour.api_key`` is set and answers errors in that provider's error shape.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import orjson
from aiohttp import web

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import UpstreamBehaviour, count_words, prompt_tokens

Json = dict[str, Any]
SSE = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _sse(data: Json, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


@dataclass
class _Fake:
    """Shared state, request log and the auth / failure gate."""

    name: str = "fake"
    behaviour: UpstreamBehaviour = field(default_factory=UpstreamBehaviour)
    requests: list[Json] = field(default_factory=list)
    served: int = 0

    def app(self) -> web.Application:
        raise NotImplementedError

    def authorised(self, request: web.Request, key: str) -> bool:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Json:
        raise NotImplementedError

    async def record(self, request: web.Request) -> Json:
        body: Json = await request.json() if request.can_read_body else {}
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "body": body,
                "headers": dict(request.headers),
            }
        )
        return body

    async def gate(self, request: web.Request) -> web.Response | None:
        b = self.behaviour
        if b.api_key is not None and not self.authorised(request, b.api_key):
            return web.json_response(self.error_body(401, "invalid api key"), status=401)
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.status != 200:
            headers = {"Retry-After": b.retry_after} if b.retry_after else None
            body = b.error_body or self.error_body(b.status, f"{self.name} failed with {b.status}")
            return web.json_response(body, status=b.status, headers=headers)
        self.served += 1
        return None

    async def stream(self, request: web.Request, events: list[bytes]) -> web.StreamResponse:
        resp = web.StreamResponse(headers=SSE)
        await resp.prepare(request)
        for event in events:
            if self.behaviour.chunk_delay_s:
                await asyncio.sleep(self.behaviour.chunk_delay_s)
            await resp.write(event)
        await resp.write_eof()
        return resp

    def words(self) -> list[str]:
        return [w if i == 0 else " " + w for i, w in enumerate(self.behaviour.reply.split())]


@dataclass
class FakeAnthropic(_Fake):
    """``POST /v1/messages`` (stream and not), ``GET /v1/models``; ``x-api-key`` auth."""

    ERROR_TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)
        return app

    async def count_tokens(self, request: web.Request) -> web.Response:
        """The same input count a ``/v1/messages`` answer would report."""
        body = await self.record(request)
        if (denied := await self.gate(request)) is not None:
            return denied
        return web.json_response({"input_tokens": self.input_tokens(body)})

    def authorised(self, request: web.Request, key: str) -> bool:
        return request.headers.get("x-api-key") == key

    def error_body(self, status: int, message: str) -> Json:
        kind = self.ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def input_tokens(self, body: Json) -> int:
        system = body.get("system")
        if isinstance(system, list):
            system = " ".join(str(b.get("text", "")) for b in system)
        extra = count_words(str(system)) + 3 if system else 0
        return prompt_tokens(body.get("messages", [])) + extra

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if (denied := await self.gate(request)) is not None:
            return denied
        mid, model = f"msg_fake{self.served}", body.get("model")
        usage = {"input_tokens": self.input_tokens(body), "output_tokens": 0}
        tool = self.behaviour.tool_call and body.get("tools")
        words = [] if tool else self.words()
        usage["output_tokens"] = len(words) + (3 if tool else 0)
        stop = "tool_use" if tool else "end_turn"
        content: list[Json] = (
            [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": body["tools"][0]["name"],
                    "input": {"city": "Paris"},
                }
            ]
            if tool
            else [{"type": "text", "text": "".join(words)}]
        )
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )
        start: Json = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1},
        }
        events = [_sse({"type": "message_start", "message": start}, "message_start")]
        if tool:
            block: Json = {**content[0], "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in ('{"city": ', '"Paris"}')
            ]
        else:
            block, deltas = (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": w} for w in words],
            )
        events.append(
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": block},
                "content_block_start",
            )
        )
        events.append(_sse({"type": "ping"}, "ping"))
        events += [
            _sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta")
            for d in deltas
        ]
        events.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        events.append(
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
                "message_delta",
            )
        )
        events.append(_sse({"type": "message_stop"}, "message_stop"))
        return await self.stream(request, events)

    async def models(self, request: web.Request) -> web.Response:
        if (denied := await self.gate(request)) is not None:
            return denied
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in ("claude-fake", "claude-big")
        ]
        return web.json_response(
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        )


@dataclass
class FakeGemini(_Fake):
    """``:generateContent``, ``:streamGenerateContent?alt=sse``, ``:batchEmbedContents`` and
    ``GET /v1beta/models``; ``x-goog-api-key`` (or ``?key=``) auth."""

    STATUSES: ClassVar[dict[int, str]] = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        503: "UNAVAILABLE",
    }

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1beta/models/{target}", self.dispatch)
        app.router.add_get("/v1beta/models", self.models)
        return app

    def authorised(self, request: web.Request, key: str) -> bool:
        return key in (request.headers.get("x-goog-api-key"), request.query.get("key"))

    def error_body(self, status: int, message: str) -> Json:
        return {
            "error": {
                "code": status,
                "message": message,
                "status": self.STATUSES.get(status, "INTERNAL"),
            }
        }

    @staticmethod
    def prompt_count(body: Json) -> int:
        total = 0
        system = body.get("systemInstruction")
        for turn in ([system] if system else []) + list(body.get("contents", [])):
            text = " ".join(str(p.get("text", "")) for p in turn.get("parts", []))
            total += count_words(text) + 3
        return total

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].partition(":")
        body = await self.record(request)
        if action not in ("generateContent", "streamGenerateContent", "batchEmbedContents"):
            return web.json_response(self.error_body(404, f"unknown method {action}"), status=404)
        if (denied := await self.gate(request)) is not None:
            return denied
        if action == "batchEmbedContents":
            return web.json_response(
                {
                    "embeddings": [
                        {"values": [0.1 * (i + 1)] * 8}
                        for i in range(len(body.get("requests", [])))
                    ]
                }
            )
        prompt, words = self.prompt_count(body), self.words()
        tool = self.behaviour.tool_call and body.get("tools")
        if tool:
            name = body["tools"][0]["functionDeclarations"][0]["name"]
            parts: list[Json] = [{"functionCall": {"name": name, "args": {"city": "Paris"}}}]
            words = []
        else:
            parts = [{"text": "".join(words)}]
        output = len(words) + (3 if tool else 0)

        def response(parts: list[Json], done: bool, out_tokens: int) -> Json:
            cand: Json = {"content": {"role": "model", "parts": parts}, "index": 0}
            if done:
                cand["finishReason"] = "STOP"
            return {
                "candidates": [cand],
                "modelVersion": model,
                "responseId": "resp-fake",
                "usageMetadata": {
                    "promptTokenCount": prompt,
                    "candidatesTokenCount": out_tokens,
                    "totalTokenCount": prompt + out_tokens,
                },
            }

        if action == "generateContent":
            return web.json_response(response(parts, True, output))
        chunks = [[{"text": w}] for w in words] if words else [parts]
        events = [
            _sse(response(c, i == len(chunks) - 1, i + 1 if words else output))
            for i, c in enumerate(chunks)
        ]
        return await self.stream(request, events)

    async def models(self, request: web.Request) -> web.Response:
        if (denied := await self.gate(request)) is not None:
            return denied
        return web.json_response(
            {
                "models": [
                    {
                        "name": "models/gemini-fake",
                        "supportedGenerationMethods": ["generateContent"],
                    },
                    {
                        "name": "models/embedding-fake",
                        "supportedGenerationMethods": ["embedContent"],
                    },
                ]
            }
        )


@dataclass
class FakeCohere(_Fake):
    """``/v2/chat`` (stream and not), ``/v2/embed``, ``/v2/rerank``, ``GET /v1/models``;
    bearer auth."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/chat", self.chat)
        app.router.add_post("/v2/embed", self.embed)
        app.router.add_post("/v2/rerank", self.rerank)
        app.router.add_get("/v1/models", self.models)
        return app

    def authorised(self, request: web.Request, key: str) -> bool:
        return request.headers.get("Authorization") == f"Bearer {key}"

    def error_body(self, status: int, message: str) -> Json:
        return {"id": "err-fake", "message": message}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if (denied := await self.gate(request)) is not None:
            return denied
        words = self.words()
        tool = self.behaviour.tool_call and body.get("tools")
        fn = {
            "name": body["tools"][0]["function"]["name"] if tool else "",
            "arguments": '{"city": "Paris"}',
        }
        call: Json = {"id": "call_fake1", "type": "function", "function": fn}
        tokens = {
            "input_tokens": prompt_tokens(body.get("messages", [])),
            "output_tokens": 3 if tool else len(words),
        }
        usage = {"billed_units": tokens, "tokens": tokens}
        finish = "TOOL_CALL" if tool else "COMPLETE"
        rid = f"cohere-{self.served}"
        if not body.get("stream"):
            message: Json = {"role": "assistant"}
            if tool:
                message |= {"tool_plan": "I will call the tool.", "tool_calls": [call]}
            else:
                message["content"] = [{"type": "text", "text": "".join(words)}]
            return web.json_response(
                {"id": rid, "finish_reason": finish, "message": message, "usage": usage}
            )
        events = [
            _sse(
                {
                    "id": rid,
                    "type": "message-start",
                    "delta": {
                        "message": {
                            "role": "assistant",
                            "content": [],
                            "tool_plan": "",
                            "tool_calls": [],
                            "citations": [],
                        }
                    },
                },
                "message-start",
            )
        ]
        if tool:
            start_call = {**call, "function": {**fn, "arguments": ""}}
            events.append(
                _sse(
                    {
                        "type": "tool-call-start",
                        "index": 0,
                        "delta": {"message": {"tool_calls": start_call}},
                    },
                    "tool-call-start",
                )
            )
            events += [
                _sse(
                    {
                        "type": "tool-call-delta",
                        "index": 0,
                        "delta": {"message": {"tool_calls": {"function": {"arguments": p}}}},
                    },
                    "tool-call-delta",
                )
                for p in ('{"city": ', '"Paris"}')
            ]
            events.append(_sse({"type": "tool-call-end", "index": 0}, "tool-call-end"))
        else:
            events.append(
                _sse(
                    {
                        "type": "content-start",
                        "index": 0,
                        "delta": {"message": {"content": {"type": "text", "text": ""}}},
                    },
                    "content-start",
                )
            )
            events += [
                _sse(
                    {
                        "type": "content-delta",
                        "index": 0,
                        "delta": {"message": {"content": {"text": w}}},
                    },
                    "content-delta",
                )
                for w in words
            ]
            events.append(_sse({"type": "content-end", "index": 0}, "content-end"))
        events.append(
            _sse(
                {"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}},
                "message-end",
            )
        )
        return await self.stream(request, events)

    async def embed(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        if (denied := await self.gate(request)) is not None:
            return denied
        texts = list(body.get("texts", []))
        tokens = sum(count_words(str(x)) for x in texts)
        return web.json_response(
            {
                "id": f"embed-{self.served}",
                "texts": texts,
                "embeddings": {"float": [[0.1 * (i + 1)] * 8 for i in range(len(texts))]},
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            }
        )

    async def rerank(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        if (denied := await self.gate(request)) is not None:
            return denied
        query, docs = str(body.get("query", "")), [str(d) for d in body.get("documents", [])]
        qwords = set(query.lower().split())
        scores = [len(qwords & set(d.lower().split())) / (len(qwords) or 1) for d in docs]
        order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
        order = order[: body.get("top_n") or len(docs)]
        tokens = count_words(query) * len(docs) + sum(count_words(d) for d in docs)
        return web.json_response(
            {
                "id": f"rerank-{self.served}",
                "results": [{"index": i, "relevance_score": scores[i]} for i in order],
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"search_units": 1},
                    "tokens": {"input_tokens": tokens},
                },
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        if (denied := await self.gate(request)) is not None:
            return denied
        return web.json_response(
            {
                "models": [
                    {"name": "command-fake", "endpoints": ["chat"]},
                    {"name": "embed-fake", "endpoints": ["embed"]},
                    {"name": "rerank-fake", "endpoints": ["rerank"]},
                ]
            }
        )


FakeT = TypeVar("FakeT", bound=_Fake)


def start_fake(fake: FakeT, port: int | None = None) -> tuple[FakeT, LocalServer]:
    """Serve ``fake`` on a free port; ``server.url`` is its base URL (stop() when done)."""
    return fake, LocalServer(fake.app, port=port).start()
