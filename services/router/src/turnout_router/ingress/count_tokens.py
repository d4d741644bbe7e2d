"""``POST /v1/messages/count_tokens``: validated and routed like a Messages request (an
unknown model 404, a model the key may not use 403 …), nothing billed or limited.

When the request would go to an ``anthropic`` provider first, the count is that upstream's
own (its ``/v1/messages/count_tokens``); otherwise, or if the upstream does not answer, it is
the router's estimate (the characters of the messages / 4 + 1, images 250 each: what routing,
limits and budget reservations use before an upstream reports its count). The
``x-turnout-token-count`` header says which: ``upstream`` or ``estimate``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from turnout_common.errors import TurnoutError
from turnout_router.adapters import translation as t
from turnout_router.adapters.anthropic import ADAPTER as ANTHROPIC
from turnout_router.adapters.anthropic import API_VERSION, DEFAULT_BASE_URL
from turnout_router.adapters.base import PreparedRequest
from turnout_router.auth import Caller
from turnout_router.inputs import load
from turnout_router.routing import plan
from turnout_router.service import _need

from .messages_door import MESSAGES, NATIVE_KINDS

if TYPE_CHECKING:
    from turnout_router.routing import Candidate
    from turnout_router.service import Gateway

log = logging.getLogger(__name__)
COUNTED = ("messages", "system", "tools", "tool_choice", "thinking")
"""The body fields Anthropic's count_tokens takes (besides the model)."""
TIMEOUT_S = 10.0


async def count_tokens(
    gw: Gateway, caller: Caller, raw: bytes, headers: Mapping[str, str]
) -> tuple[bytes, str]:
    """(``{"input_tokens": n}``, ``"upstream"`` or ``"estimate"``); 4xx like a request."""
    body = load(raw)
    body.setdefault("max_tokens", 1)  # optional here
    body.pop("stream", None)
    door = MESSAGES.door(body, headers)
    inb = door.inbound
    chain = plan(gw.state.index, _need(caller, inb, None, None), gw.state.conditions, gw.rng)
    first = chain[0]
    if first.provider.kind in NATIVE_KINDS:
        n = await _upstream(gw, caller, first, body, headers.get("anthropic-version"))
        if n is not None:
            return orjson.dumps({"input_tokens": n}), "upstream"
    return orjson.dumps({"input_tokens": inb.prompt_tokens}), "estimate"


async def _upstream(
    gw: Gateway, caller: Caller, cand: Candidate, body: dict[str, Any], version: str | None
) -> int | None:
    target = gw.target(cand, caller.key.user_id)
    if target is None:
        return None
    payload = {k: body[k] for k in COUNTED if k in body}
    payload["model"] = target.upstream_model
    hdrs = {"content-type": "application/json", "anthropic-version": version or API_VERSION}
    if target.api_key:
        hdrs["x-api-key"] = target.api_key
    url = t.base_url(target.base_url or DEFAULT_BASE_URL, "/v1") + "/v1/messages/count_tokens"
    req = PreparedRequest("POST", url, hdrs, orjson.dumps(payload))
    try:
        _, answer = await gw.client.fetch(req, ANTHROPIC, TIMEOUT_S)
        n = orjson.loads(answer).get("input_tokens")
    except (TurnoutError, orjson.JSONDecodeError, AttributeError) as exc:
        log.info(
            "count_tokens: provider %r gave no count (%s); estimating", cand.provider.name, exc
        )
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None
