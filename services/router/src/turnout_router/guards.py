"""Untrusted text that reaches a usage record: checked once, refused with a 422 naming it.

A usage record goes to Kafka, then to PostgreSQL (which refuses NUL in text), logs, metrics
and traces: a control character in one field can stop metering for everyone. Everything a
caller or an upstream can put into a record passes through here first:

- the request body's ``model`` (:func:`printable`, from :mod:`turnout_router.inputs`), the
  OpenAI ``user`` field and ``metadata`` (:func:`body_tags`);
- the headers the router keeps (:func:`header`): a value that is not visible ASCII reaches
  the RSGI app as "present but unreadable" and is refused instead of silently dropped;
- error codes an upstream sends (:func:`safe_code`): kept only when they look like codes.

Each check is a dict lookup or one regex search over a short string: nothing measurable on
the request path (``bench/guards_cost.py``).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from turnout_common.errors import ValidationFailed

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0/C1 control characters plus the Unicode line separators and bidi overrides that rewrite
how a log line or a console table reads. PostgreSQL refuses NUL; the rest forge log lines."""
SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
"""What ``x-turnout-source`` may say (``api`` without it, ``lab`` from the testing lab)."""
MAX_TASK_TYPE_CHARS = 64
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""What an upstream error code may look like to be passed on (``invalid_api_key``)."""
MAX_USER_CHARS = 256
MAX_METADATA_PAIRS = 64
MAX_METADATA_CHARS = 512


class Headers(Protocol):
    """The RSGI scope's headers (Granian): ``get`` gives ``None`` for a value that is not
    visible ASCII, while ``in`` still sees the header."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def __contains__(self, key: str) -> bool: ...


def _control(value: str) -> bool:
    # isprintable() (C speed) is true for nearly every real value; the regex decides the rest
    return not value.isprintable() and CONTROL.search(value) is not None


def printable(value: str, param: str, what: str) -> None:
    """422 naming ``param`` if ``value`` holds a control character (NUL, CR, LF, ...)."""
    if _control(value):
        raise ValidationFailed(f"{param}: {what} must not contain control characters", param=param)


def header(headers: Headers, name: str) -> str | None:
    """A kept header's value, ``None`` when absent; 422 when it is sent but unreadable
    (non-ASCII or invalid UTF-8 bytes), instead of acting as if it were not sent."""
    value: str | None = headers.get(name)
    if value is None and name in headers:
        raise ValidationFailed(
            f"{name}: the value must be printable ASCII (no other bytes can be read)", param=name
        )
    return value


def kept_headers(headers: Headers) -> tuple[str | None, str | None]:
    """``x-power-level`` and ``x-task-type`` as sent; 422 if any header the router keeps in
    the usage record (those two and ``x-turnout-source``) is sent but unreadable."""
    header(headers, "x-turnout-source")  # its value is checked by source_ok
    return header(headers, "x-power-level"), header(headers, "x-task-type")


def source_ok(source: str) -> bool:
    return SOURCE.fullmatch(source) is not None


def bad_source() -> ValidationFailed:
    return ValidationFailed(
        "x-turnout-source: 1 to 32 letters, digits, '.', '_' or '-'", param="x-turnout-source"
    )


def routing_headers(power_level: str | None, task_type: str | None, levels: Any) -> None:
    """422 for an ``x-power-level`` not in ``levels`` or an unfit ``x-task-type``."""
    if power_level is not None and power_level not in levels:
        raise ValidationFailed(
            "x-power-level: use one of eco, balanced, precision", param="x-power-level"
        )
    if task_type is not None:
        if not 0 < len(task_type) <= MAX_TASK_TYPE_CHARS:
            raise ValidationFailed(
                f"x-task-type: 1 to {MAX_TASK_TYPE_CHARS} characters", param="x-task-type"
            )
        printable(task_type, "x-task-type", "a task type")


def body_tags(body: dict[str, Any]) -> None:
    """The body's ``user`` (a string) and ``metadata`` (an object): no control characters."""
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str) or len(user) > MAX_USER_CHARS:
            raise ValidationFailed(
                f"user: a string of at most {MAX_USER_CHARS} characters is required", param="user"
            )
        printable(user, "user", "the end-user id")
    meta = body.get("metadata")
    if meta is not None:
        _metadata(meta)


def _metadata(meta: Any) -> None:
    if not isinstance(meta, dict) or len(meta) > MAX_METADATA_PAIRS:
        raise ValidationFailed(
            f"metadata: an object of at most {MAX_METADATA_PAIRS} keys is required",
            param="metadata",
        )
    for key, value in meta.items():
        if len(key) > MAX_METADATA_CHARS or _control(key):
            raise ValidationFailed(
                f"metadata: keys are at most {MAX_METADATA_CHARS} characters, without control "
                "characters",
                param="metadata",
            )
        if isinstance(value, str) and _control(value):
            raise ValidationFailed(
                f"metadata.{key}: the value must not contain control characters",
                param="metadata",
            )


def safe_code(code: str | None, default: str | None) -> str | None:
    """An upstream's error ``code`` if it looks like one, else ``default``: it goes into the
    client's answer, the usage record and a metric label."""
    if code is None or CODE.fullmatch(code) is None:
        return default
    return code
