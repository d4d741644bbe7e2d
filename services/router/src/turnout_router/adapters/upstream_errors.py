"""Upstream HTTP errors → :mod:`turnout_common.errors` (shared by the translating adapters).

Upstream messages are kept (redacted, truncated) so a person can act on them; the provider
key never appears in them.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from turnout_common.errors import (
    BadRequest,
    ContextLengthExceeded,
    RateLimited,
    TurnoutError,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamTimeout,
)
from turnout_common.logs import redact


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def clean_message(message: str, limit: int = 500) -> str:
    return redact(message.strip())[:limit]


def map_status(
    provider: str, status: int, message: str, *, retry: float | None, context_length: bool
) -> TurnoutError:
    """The common mapping of an upstream HTTP status (after provider-specific checks)."""
    msg = f"{provider} upstream: {clean_message(message) or f'HTTP {status}'}"
    if context_length:
        return ContextLengthExceeded(msg)
    if status in (401, 403):
        code = "upstream_auth_failed" if status == 401 else "upstream_permission_denied"
        return UpstreamAuthFailed(msg, code=code)
    if status == 429:
        return RateLimited(msg, retry_after=retry)
    if status in (408, 504):
        return UpstreamTimeout(msg)
    if status == 404:
        return UpstreamError(msg, code="upstream_not_found")
    if 400 <= status < 500:
        return BadRequest(msg, code="upstream_invalid_request")
    return UpstreamError(msg, code="upstream_overloaded" if status == 529 else "bad_gateway")
