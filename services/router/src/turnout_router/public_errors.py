"""What a client is told when an upstream attempt fails: the provider and the kind of failure.

Upstream error text can echo what the router sent (``Incorrect API key provided: Bearer
sk-…``), and transport errors name internal addresses (``cannot connect to 10.0.3.7:8000``).
Neither reaches a client: the detail goes to the log (secrets scrubbed) and the trace, and the
client gets one fixed sentence per failure kind, with the error's class, code and headers kept.
"""

from __future__ import annotations

import copy
import logging

import orjson

from turnout_common.errors import TurnoutError
from turnout_common.logs import redact
from turnout_router.guards import safe_code

log = logging.getLogger(__name__)

_KIND: dict[str | None, str] = {
    "upstream_auth_failed": "refused the credentials Turnout holds for it; an admin should "
    "check the provider's key",
    "upstream_permission_denied": "denied access with the credentials Turnout holds for it",
    "invalid_api_key": "refused the credentials Turnout holds for it",
    "rate_limit_exceeded": "is rate limiting requests",
    "upstream_rate_limited": "is rate limiting requests",
    "upstream_timeout": "did not answer in time",
    "upstream_not_found": "does not know the model it was asked for",
    "upstream_model_not_found": "does not know the model it was asked for",
    "upstream_invalid_request": "refused the request as invalid",
    "invalid_request": "refused the request as invalid",
    "context_length_exceeded": "says the prompt plus max_tokens exceed the model's context window",
    "content_filter": "refused the content (content filter)",
    "upstream_unreachable": "could not be reached",
    "upstream_overloaded": "is overloaded",
    "bad_gateway": "failed with a server or connection error",
    "upstream_request_failed": "could not be sent the request (check its key and settings)",
}


def public(err: TurnoutError, provider: str) -> TurnoutError:
    """A copy of ``err`` (same class, code, status and headers) with a fixed message."""
    kind = _KIND.get(err.code, "failed")
    out = copy.copy(err)
    out.message = f"provider {provider!r} {kind} (HTTP {err.status} {err.code})"
    out.args = (out.message,)
    return out


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` fit for a log line or a trace: ``secrets``, every key this process decrypted
    and anything shaped like a key replaced (on top of the log handler's own filter, which
    another logging set-up may not have)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return redact(text)


STREAM_ERROR = b'data: {"error":'
"""How an error event starts once a stream adapter has written it (passed through or made)."""


def stream_error(event: bytes, provider: str, request_id: str) -> bytes:
    """The event a client gets for an upstream's error event mid-stream: the provider and the
    error's code; the upstream's text (which may echo what was sent to it) goes to the log."""
    try:
        err = orjson.loads(event[len(b"data: ") :])["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        err = None
    detail = err if isinstance(err, dict) else {}
    raw_code = detail.get("code")
    code = safe_code(raw_code if isinstance(raw_code, str) else None, "upstream_error")
    log.warning(
        "request %s: provider %r sent an error mid-stream: %s",
        request_id, provider, scrub(str(err)[:1000]),
    )  # fmt: skip
    public_err = {
        "message": f"provider {provider!r} reported an error mid-stream ({code})",
        "type": "upstream_error",
        "param": None,
        "code": code,
    }
    return b"data: " + orjson.dumps({"error": public_err}) + b"\n\n"
