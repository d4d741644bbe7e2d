"""OpenAI chat / embeddings / rerank requests → Cohere v2 ``/v2/chat``, ``/v2/embed``,
``/v2/rerank`` bodies."""

from __future__ import annotations

from typing import Any

from turnout_common.errors import BadRequest

from . import translation as t

Json = dict[str, Any]


def _user_content(content: Any) -> str | list[Json]:
    if isinstance(content, str):
        return content
    parts: list[Json] = []
    for part in t.content_parts(content):
        if part.get("type") == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif part.get("type") == "image_url":
            parts.append({"type": "image_url", "image_url": {"url": t.image_url(part)}})
        else:
            raise BadRequest(
                f"content part type '{part.get('type')}' is not supported by Cohere models",
                param="messages",
            )
    return parts


def _message(msg: Any) -> Json:
    role = msg.get("role") if isinstance(msg, dict) else None
    if role in ("system", "developer"):
        return {"role": "system", "content": t.text_of(msg["content"])}
    if role == "user":
        return {"role": "user", "content": _user_content(msg.get("content"))}
    if role == "assistant":
        out: Json = {"role": "assistant"}
        if text := t.text_of(msg.get("content")):
            out["content"] = text
        if calls := msg.get("tool_calls"):
            out["tool_calls"] = [
                t.tool_call(
                    str(c.get("id")),
                    str((c.get("function") or {}).get("name")),
                    (c.get("function") or {}).get("arguments") or "{}",
                )
                for c in calls
            ]
        return out
    if role == "tool":
        if not msg.get("tool_call_id"):
            raise BadRequest("a tool message needs tool_call_id", param="messages")
        return {
            "role": "tool",
            "tool_call_id": msg["tool_call_id"],
            "content": t.text_of(msg.get("content")),
        }
    raise BadRequest(f"unsupported message role {role!r}", param="messages")


def _tools(body: Json, out: Json) -> None:
    tools = t.function_tools(body)
    choice = body.get("tool_choice")
    if isinstance(choice, dict):  # one named function: offer only it and require a call
        name = (choice.get("function") or {}).get("name")
        tools = [fn for fn in tools if fn["name"] == name]
        if not tools:
            raise BadRequest(
                "tool_choice names a function that is not in tools", param="tool_choice"
            )
        choice = "required"
    if tools:
        out["tools"] = [{"type": "function", "function": fn} for fn in tools]
    if choice in ("required", "none"):
        out["tool_choice"] = str(choice).upper()
    elif choice not in (None, "auto"):
        raise BadRequest(
            "tool_choice must be auto, none, required or a function", param="tool_choice"
        )


def chat_request(body: Json, model: str, *, stream: bool) -> Json:
    messages = t.chat_messages(body.get("messages"))
    if (body.get("n") or 1) != 1:
        raise BadRequest("Cohere models return one choice: n must be 1", param="n")
    out: Json = {"model": model, "messages": [_message(m) for m in messages], "stream": stream}
    if (limit := t.max_tokens(body)) is not None:
        out["max_tokens"] = limit
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "p"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
    ):
        if body.get(ours) is not None:
            out[theirs] = body[ours]
    if (stops := t.stop_list(body.get("stop"))) is not None:
        out["stop_sequences"] = stops
    wants_json, schema = t.json_format(body)
    if wants_json:
        out["response_format"] = {"type": "json_object"}
        if schema:
            out["response_format"]["json_schema"] = schema
    _tools(body, out)
    return out


def embed_request(body: Json, model: str) -> Json:
    out: Json = {
        "model": model,
        "texts": t.embedding_inputs(body),
        "input_type": body.get("input_type") or "search_document",
        "embedding_types": ["float"],
    }
    if (dims := body.get("dimensions")) is not None:
        out["output_dimension"] = dims
    return out


def rerank_request(body: Json, model: str) -> Json:
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise BadRequest("query must be a non-empty string", param="query")
    docs = body.get("documents")
    if not isinstance(docs, list) or not docs:
        raise BadRequest("documents must be a non-empty list", param="documents")
    texts: list[str] = []
    for doc in docs:
        text = doc.get("text") if isinstance(doc, dict) else doc
        if not isinstance(text, str):
            raise BadRequest(
                "each document must be a string or an object with 'text'", param="documents"
            )
        texts.append(text)
    out: Json = {"model": model, "query": query, "documents": texts}
    top_n = body.get("top_n")
    if top_n is not None:
        if not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1:
            raise BadRequest("top_n must be a positive integer", param="top_n")
        out["top_n"] = top_n
    return out
