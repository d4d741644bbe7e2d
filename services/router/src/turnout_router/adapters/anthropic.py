"""Anthropic Messages API (``POST /v1/messages``) ↔ OpenAI chat completions.

Usage: ``input_tokens`` counts only uncached input, so our input tokens are
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` and our cached
tokens are ``cache_read_input_tokens`` (cached tokens are part of input, priced apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from turnout_common.errors import BadRequest, TurnoutError
from turnout_common.provider_kinds import ANTHROPIC_VERSION, KINDS

from . import translation as t
from .anthropic_stream import AnthropicStream
from .base import PreparedRequest, Purpose, StreamTranslator, UpstreamTarget, UsageCounts
from .translating import TranslatingAdapter
from .upstream_errors import map_status, retry_after

API_VERSION = ANTHROPIC_VERSION
DEFAULT_BASE_URL = KINDS["anthropic"].default_base_url or ""
DEFAULT_MAX_TOKENS = 4096
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic error ``type`` → the HTTP status it comes with (for errors inside a stream).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
_CONTEXT_MARKERS = ("prompt is too long", "exceed context limit", "context window")

Json = dict[str, Any]


def usage_of(raw: Any) -> UsageCounts:
    if not isinstance(raw, dict):
        return UsageCounts()
    cache_read = int(raw.get("cache_read_input_tokens") or 0)
    cache_write = int(raw.get("cache_creation_input_tokens") or 0)
    return UsageCounts(
        input_tokens=int(raw.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=cache_read,
        present="input_tokens" in raw or "output_tokens" in raw,
    )


def error_from(status: int, headers: Mapping[str, str], message: str) -> TurnoutError:
    context = status in (400, 413) and any(m in message.lower() for m in _CONTEXT_MARKERS)
    return map_status(
        "anthropic", status, message, retry=retry_after(headers), context_length=context
    )


def _user_blocks(content: Any) -> list[Json]:
    blocks: list[Json] = []
    for kind, value, data in t.user_parts(content, "Anthropic"):
        if kind == "text":
            blocks.append({"type": "text", "text": value})
        else:
            source: Json = (
                {"type": "base64", "media_type": value, "data": data}
                if kind == "inline"
                else {"type": "url", "url": value}
            )
            blocks.append({"type": "image", "source": source})
    return blocks


def _assistant_blocks(msg: Json) -> list[Json]:
    text = t.text_of(msg.get("content"))
    blocks: list[Json] = [{"type": "text", "text": text}] if text else []
    for call in msg.get("tool_calls") or []:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": (call.get("function") or {}).get("name"),
                "input": t.tool_arguments(call),
            }
        )
    return blocks


def convert_messages(messages: Any) -> tuple[str | None, list[Json]]:
    """OpenAI messages → (Anthropic ``system``, Anthropic ``messages``)."""
    system: list[str] = []
    out: list[Json] = []
    for msg in t.chat_messages(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            system.append(t.text_of(msg["content"]))
            continue
        if role == "user":
            turn, blocks = "user", _user_blocks(msg.get("content"))
        elif role == "assistant":
            turn, blocks = "assistant", _assistant_blocks(msg)
        elif role == "tool":
            if not msg.get("tool_call_id"):
                raise BadRequest("a tool message needs tool_call_id", param="messages")
            turn, blocks = (
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": msg["tool_call_id"],
                        "content": t.text_of(msg.get("content")),
                    }
                ],
            )
        else:
            raise BadRequest(f"unsupported message role {role!r}", param="messages")
        t.add_turn(out, turn, "content", blocks)
    return ("\n\n".join(system) if system else None), t.some_turns(out)


def _tool_choice(body: Json) -> Json | None:
    choice = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    if choice is None and parallel is None:
        return None
    if choice is None or choice == "auto":
        out: Json = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise BadRequest(
            "tool_choice must be auto, none, required or a function", param="tool_choice"
        )
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def convert_request(body: Json, upstream_model: str, *, stream: bool) -> Json:
    if (body.get("n") or 1) != 1:
        raise BadRequest("Anthropic models return one choice: n must be 1", param="n")
    system, messages = convert_messages(body.get("messages"))
    out: Json = {"model": upstream_model, "max_tokens": t.max_tokens(body) or DEFAULT_MAX_TOKENS}
    if system:
        out["system"] = system
    out["messages"] = messages
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p")):
        if body.get(ours) is not None:
            out[theirs] = body[ours]
    if (stops := t.stop_list(body.get("stop"))) is not None:
        out["stop_sequences"] = stops
    if tools := t.function_tools(body):
        out["tools"] = [
            {
                "name": fn["name"],
                **({"description": fn["description"]} if fn.get("description") else {}),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            for fn in tools
        ]
    if (choice := _tool_choice(body)) is not None:
        out["tool_choice"] = choice
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


class AnthropicAdapter(TranslatingAdapter):
    finish_map = FINISH
    usage_of = staticmethod(usage_of)

    def supports(self, purpose: Purpose) -> bool:
        return purpose == "chat"

    def prepare(
        self, purpose: Purpose, body: dict[str, Any], target: UpstreamTarget, *, stream: bool
    ) -> PreparedRequest:
        if purpose != "chat":
            raise t.unsupported("Anthropic Messages", purpose)
        headers = {
            "content-type": "application/json",
            "anthropic-version": API_VERSION,
            **target.extra_headers,
        }
        if target.api_key:
            headers["x-api-key"] = target.api_key
        if stream:
            headers["accept"] = "text/event-stream"
        payload = convert_request(body, target.upstream_model, stream=stream)
        url = t.base_url(target.base_url or DEFAULT_BASE_URL, "/v1") + "/v1/messages"
        return PreparedRequest("POST", url, headers, orjson.dumps(payload))

    def parse(self, purpose: Purpose, body: bytes, public_model: str) -> tuple[bytes, UsageCounts]:
        data = t.load_json(body, "anthropic")
        text: list[str] = []
        calls: list[Json] = []
        for block in data.get("content") or []:
            if block.get("type") == "text":
                text.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                calls.append(t.tool_call(block["id"], block["name"], block.get("input") or {}))
        usage = usage_of(data.get("usage"))
        finish = self.finish_reason(data.get("stop_reason"))
        out = self.completion(data.get("id"), public_model, "".join(text), calls, finish, usage)
        return out, usage

    def stream(self, public_model: str, *, include_usage: bool) -> StreamTranslator:
        return AnthropicStream(self, public_model, include_usage=include_usage)

    def stream_error(self, err: Json) -> TurnoutError:
        return error_from(
            ERROR_STATUS.get(str(err.get("type")), 500),
            {},
            str(err.get("message") or err.get("type") or "stream error"),
        )

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        try:
            data = orjson.loads(body)
            err = data.get("error") if isinstance(data, dict) else None
            message = str(err.get("message", "")) if isinstance(err, dict) else ""
        except orjson.JSONDecodeError:
            message = body.decode("utf-8", "replace")
        return error_from(status, headers, message)


ADAPTER = AnthropicAdapter()
