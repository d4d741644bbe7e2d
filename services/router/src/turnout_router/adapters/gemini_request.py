"""OpenAI chat / embeddings request → Gemini ``generateContent`` / ``batchEmbedContents``."""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from turnout_common.errors import BadRequest

from . import translation as t

Json = dict[str, Any]

# JSON-Schema keywords Gemini's OpenAPI-subset ``parameters`` refuses.
_SCHEMA_DROP = frozenset({"$schema", "additionalProperties", "strict", "$id", "$defs"})


def clean_schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: clean_schema(v) for k, v in schema.items() if k not in _SCHEMA_DROP}
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]
    return schema


def _user_parts(content: Any) -> list[Json]:
    parts: list[Json] = []
    for kind, value, data in t.user_parts(content, "Gemini"):
        if kind == "text":
            parts.append({"text": value})
        elif kind == "inline":
            parts.append({"inlineData": {"mimeType": value, "data": data}})
        else:
            mime = mimetypes.guess_type(value.split("?")[0])[0] or "image/jpeg"
            parts.append({"fileData": {"mimeType": mime, "fileUri": value}})
    return parts


def _tool_response(content: Any) -> Json:
    """A tool result as Gemini's ``response`` object (JSON objects pass through)."""
    text = t.text_of(content)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": value}


def convert_messages(messages: Any) -> tuple[Json | None, list[Json]]:
    """OpenAI messages → (``systemInstruction``, ``contents``)."""
    system: list[Json] = []
    contents: list[Json] = []
    names: dict[str, str] = {}  # tool_call_id → function name (Gemini matches by name)
    for msg in t.chat_messages(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            system.append({"text": t.text_of(msg["content"])})
            continue
        if role == "user":
            turn, parts = "user", _user_parts(msg.get("content"))
        elif role == "assistant":
            text = t.text_of(msg.get("content"))
            turn, parts = "model", ([{"text": text}] if text else [])
            for call in msg.get("tool_calls") or []:
                name = str((call.get("function") or {}).get("name"))
                names[str(call.get("id"))] = name
                parts.append({"functionCall": {"name": name, "args": t.tool_arguments(call)}})
        elif role == "tool":
            name = names.get(str(msg.get("tool_call_id"))) or msg.get("name")
            if not name:
                raise BadRequest(
                    "a tool message must answer a tool_call_id of an earlier assistant message",
                    param="messages",
                )
            turn = "user"
            parts = [
                {"functionResponse": {"name": name, "response": _tool_response(msg.get("content"))}}
            ]
        else:
            raise BadRequest(f"unsupported message role {role!r}", param="messages")
        t.add_turn(contents, turn, "parts", parts)
    return ({"parts": system} if system else None), t.some_turns(contents)


def _generation_config(body: Json) -> Json:
    config: Json = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if (limit := t.max_tokens(body)) is not None:
        config["maxOutputTokens"] = limit
    if (stops := t.stop_list(body.get("stop"))) is not None:
        config["stopSequences"] = stops
    wants_json, schema = t.json_format(body)
    if wants_json:
        config["responseMimeType"] = "application/json"
        if schema:
            config["responseJsonSchema"] = schema
    return config


def _tool_config(choice: Any) -> Json | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        mode: Json = {"mode": str(choice).upper()}
    elif choice == "required":
        mode = {"mode": "ANY"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        mode = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    else:
        raise BadRequest(
            "tool_choice must be auto, none, required or a function", param="tool_choice"
        )
    return {"functionCallingConfig": mode}


def chat_request(body: Json) -> Json:
    if (body.get("n") or 1) != 1:
        raise BadRequest("this gateway streams one choice per request: n must be 1", param="n")
    system, contents = convert_messages(body.get("messages"))
    out: Json = {"contents": contents}
    if system:
        out["systemInstruction"] = system
    if config := _generation_config(body):
        out["generationConfig"] = config
    if tools := t.function_tools(body):
        out["tools"] = [
            {
                "functionDeclarations": [
                    {
                        "name": fn["name"],
                        **({"description": fn["description"]} if fn.get("description") else {}),
                        **(
                            {"parameters": clean_schema(fn["parameters"])}
                            if fn.get("parameters")
                            else {}
                        ),
                    }
                    for fn in tools
                ]
            }
        ]
    if (tool_config := _tool_config(body.get("tool_choice"))) is not None:
        out["toolConfig"] = tool_config
    return out


def embed_request(body: Json, model: str) -> Json:
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or dims < 1):
        raise BadRequest("dimensions must be a positive integer", param="dimensions")
    extra: Json = {"outputDimensionality": dims} if dims else {}
    return {
        "requests": [
            {"model": f"models/{model}", "content": {"parts": [{"text": text}]}, **extra}
            for text in t.embedding_inputs(body)
        ]
    }
