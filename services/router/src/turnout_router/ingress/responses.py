"""OpenAI Responses (``POST /v1/responses``) ⇄ the internal chat-completions shape. Pure.

Turnout keeps no responses: ``store: true``, ``previous_response_id``, ``conversation`` and
``background`` are refused with a 400 that says so (send ``store: false`` or leave it out, and
the whole conversation in ``input``). Every answer says ``"store": false``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnout_common.errors import BadRequest
from turnout_router.adapters.base import UsageCounts

from .chat_form import Skip, first_choice, function, items, refuser, stream_flags, tools

Json = dict[str, Any]
IdFactory = Callable[[str], str]

NOT_STORED = (
    "Turnout does not store responses: send store false (or leave it out) and the whole "
    "conversation in input"
)
_REFUSED = {
    "previous_response_id": NOT_STORED,
    "conversation": NOT_STORED,
    "prompt": "stored prompts are not supported; send instructions and input",
}
_REFUSE = refuser("input")
_ECHO = ("instructions", "max_output_tokens", "temperature", "top_p", "user", "metadata")


def _bad(message: str, param: str = "input") -> BadRequest:
    return BadRequest(message, param=param)


def _part(part: Any, where: str, role: str, skip: Skip) -> Json | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image" and role == "user":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            skip(f"{where}: an input_image by file_id has no chat-completions form")
            return None
        image: Json = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    skip(f"{where}: content part type {kind!r} has no chat-completions form")
    return None


def _message(item: Json, where: str, skip: Skip) -> Json:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _bad(f"{where}: role must be user, assistant, system or developer")
    content = item.get("content")
    if isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    elif isinstance(content, list):
        found = (_part(p, f"{where}.content.{j}", role, skip) for j, p in enumerate(content))
        parts = [p for p in found if p is not None]
    else:
        raise _bad(f"{where}: content must be a string or a list of parts")
    if role == "user":
        return {"role": "user", "content": parts}
    text = "".join(p["text"] for p in parts)
    return {"role": "system" if role == "developer" else role, "content": text}


def _call(item: Json, where: str, out: list[Json]) -> None:
    call_id, name, args = item.get("call_id"), item.get("name"), item.get("arguments")
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(args, str):
        raise _bad(f"{where}: a function_call needs call_id, name and arguments (a string)")
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)  # parallel calls share one turn
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _output(item: Json, where: str) -> Json:
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str):
        raise _bad(f"{where}: a function_call_output needs call_id")
    if isinstance(output, list):
        output = "".join(
            str(p.get("text", "")) for p in output if isinstance(p, dict) and "text" in p
        )
    if not isinstance(output, str):
        raise _bad(f"{where}: output must be a string")
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _input(raw: Any, skip: Skip) -> list[Json]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    listed = items(raw, "input: a string or a non-empty list of items is required", "input")
    out: list[Json] = []
    for i, item in enumerate(listed):
        where = f"input.{i}"
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "message" and isinstance(item, dict):
            out.append(_message(item, where, skip))
        elif kind == "function_call":
            _call(item, where, out)
        elif kind == "function_call_output":
            out.append(_output(item, where))
        elif kind == "reasoning":
            continue  # a translated upstream cannot take reasoning back
        else:
            skip(f"{where}: input item type {kind!r} has no chat-completions form")
    return out


def _function(i: int, tool: Any, skip: Skip) -> Json | None:
    if not isinstance(tool, dict):
        raise _bad(f"tools.{i}: a tool object is required", "tools")
    if tool.get("type") != "function":
        skip(f"tools.{i}: hosted tools ({tool.get('type')!r}) have no chat-completions form")
        return None
    if not isinstance(tool.get("name"), str):
        raise _bad(f"tools.{i}: a function tool needs a name", "tools")
    fn = function(tool["name"], tool.get("parameters"))
    for key in ("description", "strict"):
        if tool.get(key) is not None:
            fn[key] = tool[key]
    return fn


def _tool_choice(raw: Any, skip: Skip) -> Any:
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return {"type": "function", "function": {"name": raw["name"]}}
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        skip(f"tool_choice: {raw['type']!r} has no chat-completions form")
        return None
    raise _bad("tool_choice: auto, none, required or a function by name", "tool_choice")


def _format(text: Any) -> Json | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise _bad("text.format: text, json_object or json_schema", "text")


def _refused(body: Json) -> None:
    """400 for what needs stored responses (Turnout keeps none) or background runs."""
    for name, why in _REFUSED.items():
        if body.get(name) is not None:
            raise _bad(f"{name}: {why}", name)
    if body.get("store") is True:
        raise _bad(f"store: {NOT_STORED}", "store")
    if body.get("background") is True:
        raise _bad("background: background responses are not supported", "background")


def to_chat(body: Json, skip: Skip = _REFUSE) -> Json:
    """A Responses request → a chat-completions request (400/422 when invalid or refused;
    what chat cannot say goes to ``skip``)."""
    _refused(body)
    messages = _input(body.get("input"), skip)
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _bad("instructions: a string is required", "instructions")
        messages.insert(0, {"role": "system", "content": instructions})
    chat: Json = {"model": body.get("model"), "messages": messages}
    mt = body.get("max_output_tokens")
    if mt is not None:
        chat["max_tokens"] = mt  # validated with the chat request's max_tokens
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("tools") and (chat_tools := tools(body["tools"], skip, _function)):
        chat["tools"] = chat_tools
    if body.get("tool_choice") is not None:
        choice = _tool_choice(body["tool_choice"], skip)
        if choice is not None:
            chat["tool_choice"] = choice
    if (fmt := _format(body.get("text"))) is not None:
        chat["response_format"] = fmt
    stream_flags(body, chat)
    return chat


def usage_body(usage: UsageCounts) -> Json:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def text_item(item_id: str, text: str, status: str = "completed") -> Json:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def call_item(item_id: str, call_id: str, name: str, args: str, status: str = "completed") -> Json:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": args,
        "status": status,
    }


def envelope(body: Json, rid: str, created: int, model: str, status: str = "in_progress") -> Json:
    """The response object around the output: what the request asked, echoed."""
    out: Json = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "text": body.get("text") or {"format": {"type": "text"}},
        "store": False,
        "truncation": body.get("truncation") or "disabled",
        "usage": None,
    }
    for name in _ECHO:
        out[name] = body.get(name)
    out["metadata"] = body.get("metadata") or {}
    return out


def finish(resp: Json, finish_reason: str | None, usage: UsageCounts) -> Json:
    """Set the final status (``incomplete`` when cut by max_output_tokens or a filter)."""
    if finish_reason == "length":
        resp["status"] = "incomplete"
        resp["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        resp["status"] = "incomplete"
        resp["incomplete_details"] = {"reason": "content_filter"}
    else:
        resp["status"] = "completed"
    resp["usage"] = usage_body(usage)
    return resp


def from_chat(
    chat: Json, usage: UsageCounts, model: str, body: Json, new_id: IdFactory, created: int
) -> Json:
    """A chat completion → a Response (a message item, then function_call items)."""
    choice, msg = first_choice(chat)
    resp = envelope(body, new_id("resp_"), created, model)
    text = msg.get("content")
    if isinstance(text, str) and text:
        resp["output"].append(text_item(new_id("msg_"), text))
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        resp["output"].append(
            call_item(
                new_id("fc_"),
                str(call.get("id") or ""),
                str(fn.get("name") or ""),
                str(fn.get("arguments") or ""),
            )
        )
    return finish(resp, choice.get("finish_reason"), usage)
