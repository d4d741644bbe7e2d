"""OpenAI Responses stream events from our chat chunks (any upstream kind). Pure.

``response.created`` and ``response.in_progress`` open the stream; a message item carries
``response.output_text.delta`` events, each tool call a function_call item with
``response.function_call_arguments.delta`` events; ``response.completed`` (or
``response.incomplete``) closes it with the upstream's usage. Every event has its
``sequence_number``.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_router.adapters.base import UsageCounts

from .chunks import ChunkSource
from .responses import IdFactory, call_item, envelope, finish, text_item
from .streams import ChunkEncoder

Json = dict[str, Any]


def error_event(err: TurnoutError, seq: int = 0) -> bytes:
    data = {
        "type": "error",
        "code": err.code,
        "message": err.message,
        "param": err.param,
        "sequence_number": seq,
    }
    return b"event: error\ndata: " + orjson.dumps(data) + b"\n\n"


class ResponsesEncoder(ChunkEncoder):
    """Chat chunks (what ``source`` yields) → Responses stream events."""

    def __init__(
        self, source: ChunkSource, body: Json, model: str, new_id: IdFactory, created: int
    ) -> None:
        super().__init__(source)
        self._new_id = new_id
        self._resp = envelope(body, new_id("resp_"), created, model)
        self._seq = 0
        self._open: Json | None = None  # the output item being streamed
        self._text_parts: list[str] = []
        self._calls: dict[int, Json] = {}  # chat tool_call index → function_call item

    def _event(self, kind: str, data: Json) -> bytes:
        """One event, serialised now: the state it shows is the state at this moment."""
        data = {"type": kind, **data, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _fail(self, err: Json, out: list[bytes]) -> None:
        self._resp["status"] = "failed"
        self._resp["error"] = {"code": "server_error", "message": err.get("message")}
        out.append(self._event("response.failed", {"response": self._resp}))

    def _begin(self, out: list[bytes]) -> None:
        out.append(self._event("response.created", {"response": self._resp}))
        out.append(self._event("response.in_progress", {"response": self._resp}))

    def _add(self, item: Json, out: list[bytes]) -> None:
        self._close(out)
        self._open = item
        index = len(self._resp["output"])
        self._resp["output"].append(item)
        data = {"output_index": index, "item": item}
        out.append(self._event("response.output_item.added", data))

    def _where(self) -> Json:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": len(self._resp["output"]) - 1}

    def _text(self, text: str, out: list[bytes]) -> None:
        if self._open is None or self._open["type"] != "message":
            self._add(text_item(self._new_id("msg_"), "", "in_progress"), out)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            data = {**self._where(), "content_index": 0, "part": part}
            out.append(self._event("response.content_part.added", data))
            self._text_parts = []
        assert self._open is not None
        self._text_parts.append(text)
        # the hot path (one per upstream chunk): the event's dict built once, in order
        data = {
            "type": "response.output_text.delta",
            "item_id": self._open["id"],
            "output_index": len(self._resp["output"]) - 1,
            "content_index": 0,
            "delta": text,
            "logprobs": [],
            "sequence_number": self._seq,
        }
        self._seq += 1
        out.append(b"event: response.output_text.delta\ndata: " + orjson.dumps(data) + b"\n\n")

    def _tool(self, tc: Json, out: list[bytes]) -> None:
        idx = int(tc.get("index", 0))
        fn = tc.get("function") or {}
        if idx not in self._calls:
            call_id, name = str(tc.get("id") or ""), str(fn.get("name") or "")
            item = call_item(self._new_id("fc_"), call_id, name, "", "in_progress")
            self._calls[idx] = item
            self._add(item, out)
        item = self._calls[idx]
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            item["arguments"] += args
            if item is self._open:  # interleaved arguments of an earlier call: kept, not sent
                data = {**self._where(), "delta": args}
                out.append(self._event("response.function_call_arguments.delta", data))

    def _close(self, out: list[bytes]) -> None:
        item = self._open
        if item is None:
            return
        where = self._where()
        if item["type"] == "message":
            text = "".join(self._text_parts)
            done = text_item(item["id"], text)
            part = done["content"][0]
            data = {**where, "content_index": 0, "text": text, "logprobs": []}
            out.append(self._event("response.output_text.done", data))
            data = {**where, "content_index": 0, "part": part}
            out.append(self._event("response.content_part.done", data))
        else:
            done = {**item, "status": "completed"}
            data = {**where, "name": item["name"], "arguments": item["arguments"]}
            out.append(self._event("response.function_call_arguments.done", data))
        self._resp["output"][where["output_index"]] = done
        data = {"output_index": where["output_index"], "item": done}
        out.append(self._event("response.output_item.done", data))
        self._open = None

    def _end(self, usage: UsageCounts, out: list[bytes]) -> None:
        resp = finish(self._resp, self._reason, usage)
        kind = "response.completed" if resp["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": resp}))
