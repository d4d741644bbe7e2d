"""One error hierarchy for every service, rendered in OpenAI's error JSON shape."""

from __future__ import annotations

from typing import Any, ClassVar


class TurnoutError(Exception):
    """Base error: knows its HTTP status, OpenAI error type and a machine code."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, {self.message!r})"


class BadRequest(TurnoutError):
    status = 400
    type = "invalid_request_error"
    default_code = "invalid_request"


class ValidationFailed(BadRequest):
    status = 422
    default_code = "validation_error"


class ContextLengthExceeded(BadRequest):
    default_code = "context_length_exceeded"


class ContentFiltered(BadRequest):
    default_code = "content_filter"


class RequestTooLarge(BadRequest):
    """The request can never pass: larger than a limit (tokens per minute, body size)."""

    status = 413
    default_code = "request_too_large"


class AuthenticationFailed(TurnoutError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(TurnoutError):
    status = 403
    type = "permission_error"
    default_code = "permission_denied"


class NotFound(TurnoutError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class Conflict(TurnoutError):
    status = 409
    type = "invalid_request_error"
    default_code = "conflict"


class RateLimited(TurnoutError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("retry-after", str(max(1, round(retry_after))))


class InsufficientQuota(TurnoutError):
    status = 429
    type = "insufficient_quota"
    default_code = "insufficient_quota"


class UpstreamError(TurnoutError):
    """The upstream failed (after fallbacks, if any)."""

    status = 502
    type = "upstream_error"
    default_code = "bad_gateway"


class UpstreamAuthFailed(UpstreamError):
    """The upstream refused the *provider's* key (401/403): a deployment problem, not the
    client's. 502, so the router falls back to another deployment and the client is never
    told its own (valid) Turnout key is wrong."""

    default_code = "upstream_auth_failed"


class ServiceUnavailable(TurnoutError):
    status = 503
    type = "server_error"
    default_code = "service_unavailable"


class UpstreamTimeout(TurnoutError):
    status = 504
    type = "timeout_error"
    default_code = "upstream_timeout"


class ConfigurationError(TurnoutError):
    """A start-up or configuration problem a person must fix (never an HTTP response)."""

    status = 500
    default_code = "configuration_error"
