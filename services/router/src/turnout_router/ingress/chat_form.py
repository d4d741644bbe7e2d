"""What the doors' request and answer transforms (:mod:`.messages`, :mod:`.responses`) share:
the chat form of the client's tools and stream flag, and the first choice of a chat answer.
Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnout_common.errors import BadRequest, ValidationFailed

Json = dict[str, Any]
Skip = Callable[[str], None]
"""Told what the chat form cannot say (a server or hosted tool, a document block, a file
part …): refuse (400) or note it and leave it out (the door then keeps to native providers)."""
Function = Callable[[int, Any, Skip], "Json | None"]
"""(index, the client's tool, skip) → its chat function, or None when it was skipped."""


def refuser(param: str) -> Skip:
    """The ``skip`` of a transform called on its own: what chat cannot say is a 400."""

    def refuse(note: str) -> None:
        raise BadRequest(note, param=param)

    return refuse


def items(raw: Any, message: str, param: str) -> list[Any]:
    """The client's conversation (``messages``, ``input``): a non-empty list, else 422."""
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(message, param=param)
    return raw


def tools(raw: Any, skip: Skip, function: Function) -> list[Json]:
    """The client's ``tools`` → chat ``tools`` (``function`` reads each one)."""
    if not isinstance(raw, list):
        raise BadRequest("tools: a list of tools is required", param="tools")
    out: list[Json] = []
    for i, tool in enumerate(raw):
        if (fn := function(i, tool, skip)) is not None:
            out.append({"type": "function", "function": fn})
    return out


def function(name: str, parameters: Any) -> Json:
    """A chat function (no parameters: an object without properties)."""
    return {"name": name, "parameters": parameters or {"type": "object", "properties": {}}}


def stream_flags(body: Json, chat: Json) -> None:
    """The client's ``stream`` on the chat request (a stream always asks for usage)."""
    if "stream" in body:
        chat["stream"] = body["stream"]
        if body["stream"] is True:
            chat["stream_options"] = {"include_usage": True}


def first_choice(chat: Json) -> tuple[Json, Json]:
    """A chat completion's first choice and its message (empty when absent)."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    return choice, choice.get("message") or {}
