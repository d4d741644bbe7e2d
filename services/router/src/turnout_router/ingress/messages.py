"""Anthropic Messages (``POST /v1/messages``) ⇄ the internal chat-completions shape. Pure.

Usage in Anthropic's shape counts cached reads apart: ``input_tokens`` is the uncached input,
``cache_read_input_tokens`` the cached part. Our records count input including cached tokens
(cached priced apart), so the client's ``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens`` is always the record's ``input_tokens``.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout_common.errors import BadRequest, TurnoutError, ValidationFailed
from turnout_router.adapters.base import UsageCounts

from .chat_form import Skip, first_choice, function, items, refuser, stream_flags, tools

Json = dict[str, Any]

STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_SKIPPED_BLOCKS = ("thinking", "redacted_thinking")
"""Blocks a translated upstream cannot take back; dropped from the conversation."""
_REFUSE = refuser("messages")


def error_body(err: TurnoutError) -> Json:
    """Anthropic's error shape (the SDK maps the HTTP status to its exception class)."""
    kind = ERROR_TYPE.get(err.status, "api_error" if err.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def _bad(message: str, param: str = "messages") -> BadRequest:
    return BadRequest(message, param=param)


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if not isinstance(b, dict) or b.get("type") != "text":
                raise _bad(f"{where}: only text blocks are supported here")
            parts.append(str(b.get("text", "")))
        return "".join(parts)
    if content is None:
        return ""
    raise _bad(f"{where}: a string or a list of text blocks is required")


def _image(block: Json, where: str) -> Json:
    src = block.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{where}: an image block needs a source")
    if src.get("type") == "base64":
        media, data = src.get("media_type"), src.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise _bad(f"{where}: a base64 image needs media_type and data")
        url = f"data:{media};base64,{data}"
    elif src.get("type") == "url" and isinstance(src.get("url"), str):
        url = src["url"]
    else:
        raise _bad(f"{where}: image source type must be base64 or url")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: Json, where: str) -> Json:
    if not isinstance(block.get("tool_use_id"), str):
        raise _bad(f"{where}: a tool_result block needs tool_use_id")
    content = block.get("content")
    if isinstance(content, list):
        # images inside a tool result have no chat equivalent: their text only
        content = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]
    text = _text_of(content, where)
    if block.get("is_error") is True:
        text = f"[tool error] {text}"
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _user(content: list[Any], where: str, out: list[Json], skip: Skip) -> None:
    parts: list[Json] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "tool_result":
            out.append(_tool_result(block, at))  # tool results answer the last assistant turn
        elif kind in _SKIPPED_BLOCKS:
            continue
        else:
            skip(f"{at}: content block type {kind!r} has no chat-completions form")
    if parts:
        out.append({"role": "user", "content": parts})


def _assistant(content: list[Any], where: str, out: list[Json], skip: Skip) -> None:
    text: list[str] = []
    calls: list[Json] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _bad(f"{at}: a tool_use block needs id and name")
            args = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": args},
                }
            )
        elif kind in _SKIPPED_BLOCKS:
            continue
        else:
            skip(f"{at}: content block type {kind!r} has no chat-completions form")
    msg: Json = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        msg["tool_calls"] = calls
    if text or calls:
        out.append(msg)


def _messages(raw: Any, skip: Skip) -> list[Json]:
    listed = items(raw, "messages: a non-empty list of messages is required", "messages")
    out: list[Json] = []
    for i, msg in enumerate(listed):
        where = f"messages.{i}"
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("user", "assistant"):
            raise _bad(f"{where}: role must be 'user' or 'assistant'")
        content = msg.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise _bad(f"{where}: content must be a string or a list of content blocks")
        (_user if role == "user" else _assistant)(content, where, out, skip)
    return out


def _function(i: int, tool: Any, skip: Skip) -> Json | None:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise _bad(f"tools.{i}: every tool needs a name", "tools")
    if tool.get("type") not in (None, "custom"):
        skip(f"tools.{i}: server tools ({tool.get('type')}) have no chat-completions form")
        return None
    fn = function(tool["name"], tool.get("input_schema"))
    if isinstance(tool.get("description"), str):
        fn["description"] = tool["description"]
    return fn


def _tool_choice(raw: Any, chat: Json) -> None:
    if not isinstance(raw, dict):
        raise _bad("tool_choice: an object with a type is required", "tool_choice")
    kind = raw.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(raw.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": raw["name"]}}
    else:
        raise _bad("tool_choice: type must be auto, any, none or tool (with a name)", "tool_choice")
    if raw.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def to_chat(body: Json, skip: Skip = _REFUSE) -> Json:
    """An Anthropic Messages request → a chat-completions request (400/422 when invalid;
    what chat cannot say goes to ``skip``)."""
    mt = body.get("max_tokens")
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        raise ValidationFailed("max_tokens: a positive integer is required", param="max_tokens")
    messages = _messages(body.get("messages"), skip)
    system = body.get("system")
    if system is not None:
        messages.insert(0, {"role": "system", "content": _text_of(system, "system")})
    chat: Json = {"model": body.get("model"), "messages": messages, "max_tokens": mt}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences: a list of strings is required", "stop_sequences")
        chat["stop"] = stops
    if body.get("tools") and (chat_tools := tools(body["tools"], skip, _function)):
        chat["tools"] = chat_tools
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], chat)
    meta = body.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        chat["user"] = meta["user_id"]
    stream_flags(body, chat)
    return chat


def usage_body(usage: UsageCounts) -> Json:
    """Our counts in Anthropic's shape (cached reads apart from ``input_tokens``)."""
    cached = min(usage.cached_tokens, usage.input_tokens)
    return {
        "input_tokens": usage.input_tokens - cached,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def message_id(chat_id: Any, fallback: str) -> str:
    return chat_id if isinstance(chat_id, str) and chat_id.startswith("msg_") else fallback


def from_chat(chat: Json, usage: UsageCounts, model: str, mid: str) -> Json:
    """A chat completion → an Anthropic message (text and tool_use blocks)."""
    choice, msg = first_choice(chat)
    content: list[Json] = []
    text = msg.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = {"_raw": fn.get("arguments")}
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(fn.get("name") or ""),
                "input": args if isinstance(args, dict) else {"value": args},
            }
        )
    return {
        "id": message_id(chat.get("id"), mid),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASON.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": usage_body(usage),
    }
