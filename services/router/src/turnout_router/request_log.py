"""One log line per request (``TURNOUT_REQUEST_LOG``; `turnout up` turns it on).

``POST /v1/chat/completions demo-chat → simulator 200 4+9 tokens $0.000002200 12.3ms``
"""

from __future__ import annotations

import logging

from turnout_router.context import RequestContext

log = logging.getLogger("turnout_router.requests")


def log_request(ctx: RequestContext, seconds: float) -> None:
    inp, out, _, estimated = ctx.tokens()
    cand = ctx.served
    model = ctx.inbound.model if ctx.inbound is not None else "-"
    where = cand.provider.name if cand is not None else "-"
    amount = ctx.cost()
    cost = f" ${amount}" if amount is not None else ""
    error = f" {ctx.error_code}" if ctx.error_code else ""
    mark = "~" if estimated else ""
    log.info(
        "POST %s %s → %s %d%s %s%d+%d tokens%s %.1fms",
        ctx.path, model, where, ctx.status, error, mark, inp, out, cost, seconds * 1000,
    )  # fmt: skip
