"""Helpers shared by the translating adapters (Anthropic, Gemini, Cohere): pure functions
that read OpenAI request pieces and build OpenAI response bodies."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from turnout_common.errors import BadRequest, UpstreamError

from .base import Purpose, UsageCounts

Json = dict[str, Any]
Clock = Callable[[], int]
IdFactory = Callable[[str], str]


def wall_clock() -> int:
    return int(time.time())


def random_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def unsupported(adapter: str, purpose: Purpose) -> BadRequest:
    return BadRequest(
        f"the {adapter} protocol does not serve '{purpose}' requests; "
        "route this model to a provider kind that does",
        code="unsupported_purpose",
    )


def base_url(url: str, *suffixes: str) -> str:
    """``url`` without a trailing slash or a version suffix the caller adds itself."""
    url = url.rstrip("/")
    for suffix in suffixes:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


# --- OpenAI request pieces ----------------------------------------------------------------


def text_of(content: Any) -> str:
    """The text of an OpenAI message content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text", None)
        )
    raise BadRequest(
        "message content must be a string or a list of content parts", param="messages"
    )


def content_parts(content: Any) -> list[Json]:
    """OpenAI content as a list of parts (a string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return list(content)
    raise BadRequest(
        "message content must be a string or a list of content parts", param="messages"
    )


def image_url(part: Json) -> str:
    raw = part.get("image_url")
    url = raw.get("url") if isinstance(raw, dict) else raw
    if not isinstance(url, str) or not url:
        raise BadRequest("an image_url part needs image_url.url", param="messages")
    return url


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:image/png;base64,AAA`` → ("image/png", "AAA"); None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise BadRequest(
            "image data URLs must be base64 encoded (data:<mime>;base64,...)", param="messages"
        )
    return header[: -len(";base64")] or "application/octet-stream", data


def user_parts(content: Any, models: str) -> list[tuple[str, str, str]]:
    """A user message's texts and images, for upstreams with part shapes of their own:
    ``("text", text, "")`` (empty texts dropped), ``("inline", mime type, base64 data)`` for a
    data URL, ``("url", url, "")``; any other part type is a 400 naming ``models``."""
    out: list[tuple[str, str, str]] = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                out.append(("text", str(part["text"]), ""))
        elif kind == "image_url":
            url = image_url(part)
            inline = parse_data_url(url)
            out.append(("inline", *inline) if inline else ("url", url, ""))
        else:
            raise BadRequest(
                f"content part type '{kind}' is not supported by {models} models", param="messages"
            )
    return out


def chat_messages(messages: Any) -> list[Any]:
    """The request's ``messages``: a non-empty list, else 400."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", param="messages")
    return messages


def add_turn(turns: list[Json], role: str, key: str, items: list[Json]) -> None:
    """Append a turn of ``items`` under ``key``; one after a turn of the same role merges
    into it (Anthropic's and Gemini's conversations alternate roles)."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def some_turns(turns: list[Json]) -> list[Json]:
    """The converted conversation, which must hold more than a system prompt (else 400)."""
    if not turns:
        raise BadRequest(
            "messages need at least one user or assistant message besides the system prompt",
            param="messages",
        )
    return turns


def json_format(body: Json) -> tuple[bool, Any]:
    """Whether ``response_format`` asks for JSON, and the JSON schema it gives (or None)."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") not in ("json_object", "json_schema"):
        return False, None
    return True, (fmt.get("json_schema") or {}).get("schema")


def stop_list(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise BadRequest("stop must be a string or a list of strings", param="stop")


def max_tokens(body: Json) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest("max_tokens must be a positive integer", param="max_tokens")
    return value


def function_tools(body: Json) -> list[Json]:
    """The ``function`` objects of OpenAI tools (other tool types are refused)."""
    out: list[Json] = []
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type", "function") != "function":
            raise BadRequest("only function tools are supported", param="tools")
        if not isinstance(fn.get("name"), str):
            raise BadRequest("every tool function needs a name", param="tools")
        out.append(fn)
    return out


def tool_arguments(call: Json) -> Json:
    """An assistant tool call's JSON-string arguments as an object."""
    raw = (call.get("function") or {}).get("arguments") or "{}"
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise BadRequest(
            "tool call arguments must be a JSON object string", param="messages"
        ) from None
    if not isinstance(args, dict):
        raise BadRequest("tool call arguments must be a JSON object", param="messages")
    return args


def load_json(body: bytes, what: str) -> Json:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{what} returned a body that is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamError(f"{what} returned JSON that is not an object")
    return data


# --- OpenAI response pieces ---------------------------------------------------------------


def openai_usage(usage: UsageCounts) -> Json:
    out: Json = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return out


def tool_call(call_id: str, name: str, arguments: Any) -> Json:
    args = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def chat_completion(
    *,
    rid: str,
    created: int,
    model: str,
    text: str | None,
    tool_calls: list[Json],
    finish_reason: str,
    usage: UsageCounts,
) -> bytes:
    message: Json = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return orjson.dumps(
        {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": openai_usage(usage),
        }
    )


def embedding_list(
    vectors: list[list[float]], model: str, usage: UsageCounts, encoding_format: str = "float"
) -> bytes:
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": encode_vector(v) if encoding_format == "base64" else v,
        }
        for i, v in enumerate(vectors)
    ]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
        }
    )


def encode_vector(values: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: little-endian float32, base64 encoded."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def embedding_inputs(body: Json) -> list[str]:
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise BadRequest(
            "input must be a non-empty string or list of strings "
            "(token arrays are not supported by this provider)",
            param="input",
        )
    return inputs
