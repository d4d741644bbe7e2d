"""Parse and validate a request body once (orjson), and infer what it needs from a model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from turnout_common.errors import BadRequest, RequestTooLarge, ValidationFailed
from turnout_router.adapters.base import Purpose

MAX_MODEL_CHARS = 256
"""Longer names are no catalog name (and would bloat every usage record)."""
MAX_OUTPUT_TOKENS = 10_000_000
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Control characters: never in a name that reaches a usage record (PostgreSQL refuses NUL)."""


def printable(value: str, param: str, what: str) -> None:
    """422 naming ``param`` if ``value`` holds a control character (NUL, CR, LF, ...)."""
    if CONTROL.search(value) is not None:
        raise ValidationFailed(f"{param}: {what} must not contain control characters", param=param)


@dataclass(slots=True)
class Inbound:
    purpose: Purpose
    body: dict[str, Any]
    model: str
    stream: bool = False
    include_usage: bool = False
    prompt_chars: int = 0
    max_tokens: int | None = None
    tools: bool = False
    vision: bool = False
    json_mode: bool = False

    @property
    def prompt_tokens(self) -> int:
        """The chars/4 estimate used for routing, limits and usage without upstream counts."""
        return self.prompt_chars // 4 + 1


def _chat(body: dict[str, Any], inb: Inbound) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationFailed(
            "messages: a non-empty list of messages is required", param="messages"
        )
    chars = 0
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise ValidationFailed(
                f"messages.{i}: each message must be an object with a 'role'", param="messages"
            )
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    kind = part.get("type")
                    if kind in ("image_url", "input_image", "image"):
                        inb.vision = True
                        chars += 1000
                    elif isinstance(part.get("text"), str):
                        chars += len(part["text"])
    inb.prompt_chars = chars
    tools = body.get("tools") or body.get("functions")
    inb.tools = bool(tools)
    rf = body.get("response_format")
    inb.json_mode = isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")
    inb.stream = body.get("stream") is True
    opts = body.get("stream_options")
    inb.include_usage = inb.stream and isinstance(opts, dict) and opts.get("include_usage") is True


def _texts(value: Any, field: str) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return sum(len(v) for v in value)
        if all(isinstance(v, int) for v in value) or all(isinstance(v, list) for v in value):
            return 4 * sum(len(v) if isinstance(v, list) else 1 for v in value)  # token ids
        if field == "documents" and all(isinstance(v, dict) for v in value):
            return sum(len(str(v.get("text", ""))) for v in value)
    raise ValidationFailed(
        f"{field}: a string or a non-empty list of strings is required", param=field
    )


MAX_DEPTH = 200
"""Deeper JSON is refused with 400 (no request needs it; orjson cannot write past 254)."""


async def read_body(proto: Any, content_length: str | None, limit: int) -> bytes:
    """The whole body, or 413 ``request_too_large`` as soon as it passes ``limit`` bytes."""
    if content_length is not None and content_length.isdigit():
        if int(content_length) > limit:
            raise RequestTooLarge(
                f"the request body is larger than {limit / (1 << 20):g} MB (TURNOUT_MAX_BODY_MB)"
            )
        raw: bytes = await proto()
        return raw
    chunks: list[bytes] = []
    size = 0
    async for chunk in proto:
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(
                f"the request body is larger than {limit / (1 << 20):g} MB (TURNOUT_MAX_BODY_MB)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _too_deep(body: Any) -> bool:
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


def parse(purpose: Purpose, raw: bytes) -> Inbound:
    """The request as a dict plus the facts routing needs; 400/422 with a clear message."""
    return inbound(purpose, load(raw))


def load(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object (400 when empty, not JSON, not an object, too deep)."""
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    # only a body with that many brackets can nest that deep (the count runs at C speed)
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(body):
        raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels")
    return body


def inbound(purpose: Purpose, body: dict[str, Any]) -> Inbound:
    """The facts routing needs from a parsed body (422 naming the bad field)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValidationFailed("model: a model name (string) is required", param="model")
    if len(model) > MAX_MODEL_CHARS:
        raise ValidationFailed(f"model: at most {MAX_MODEL_CHARS} characters", param="model")
    printable(model, "model", "a model name")
    inb = Inbound(purpose, body, model)
    if purpose == "chat":
        _chat(body, inb)
    elif purpose == "completion":
        inb.prompt_chars = _texts(body.get("prompt"), "prompt")
        inb.stream = body.get("stream") is True
        opts = body.get("stream_options")
        inb.include_usage = (
            inb.stream and isinstance(opts, dict) and bool(opts.get("include_usage"))
        )
    elif purpose == "embeddings":
        inb.prompt_chars = _texts(body.get("input"), "input")
    else:
        if not isinstance(body.get("query"), str):
            raise ValidationFailed("query: a string is required", param="query")
        inb.prompt_chars = len(body["query"]) + _texts(body.get("documents"), "documents")
    mt = body.get("max_completion_tokens", body.get("max_tokens"))
    if mt is not None:
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise ValidationFailed("max_tokens: a positive integer is required", param="max_tokens")
        if mt > MAX_OUTPUT_TOKENS:
            raise ValidationFailed(
                f"max_tokens: at most {MAX_OUTPUT_TOKENS:,} (no model writes more)",
                param="max_tokens",
            )
        inb.max_tokens = mt
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ValidationFailed("stream: true or false is required", param="stream")
    return inb
