"""What a client is told when an upstream attempt fails: the provider and the kind of failure.

Upstream error text can echo what the router sent (``Incorrect API key provided: Bearer
sk-…``), and transport errors name internal addresses (``cannot connect to 10.0.3.7:8000``).
Neither reaches a client: the detail goes to the log (secrets scrubbed) and the trace, and the
client gets one fixed sentence per failure kind, with the error's class, code and headers kept.
"""

from __future__ import annotations

import copy

from turnout_common.errors import TurnoutError

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
    """``text`` with every configured secret in it replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return text
