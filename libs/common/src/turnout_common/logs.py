"""Logging that never prints secrets.

:class:`RedactingFilter` scrubs API keys, bearer tokens, Fernet tokens, DSN passwords and
``"api_key": ...``-style fields from every record (message, args and exception text) before
any handler formats it.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import orjson

REDACTED = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers / bearer tokens
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1" + REDACTED),
    # JSON / kv secrets: "api_key": "...", api_key=..., password=..., token: ...
    (
        re.compile(
            r"""(?ix)(["']?(?:api[_-]?key|x-api-key|password|passwd|secret|token|admin_token|
        encryption_keys|authorization|key)["']?\s*[:=]\s*["']?)([^"'\s,&}]{4,})"""
        ),
        r"\1" + REDACTED,
    ),
    # DSN passwords: scheme://user:password@host
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/\s@]+:)([^@\s]+)(@)"), r"\1" + REDACTED + r"\3"),
    # provider-style keys: sk-..., sk-ant-..., tk-... (virtual keys), AIza... (Google)
    (re.compile(r"\b(sk|tk|pk|rk)-[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), REDACTED),
    # Fernet tokens (version byte 0x80 -> "gAAAAA")
    (re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"), REDACTED),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (with args merged) and exception text, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:
            data["exc"] = record.exc_text
        return orjson.dumps(data).decode()


def setup_logging(level: str = "INFO", *, json: bool = False, service: str = "turnout") -> None:
    """Configure the root logger once, with the redaction filter on the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_turnout", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._turnout = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if json
        else logging.Formatter(
            f"%(asctime)s %(levelname)-5s {service} %(name)s: %(message)s", "%H:%M:%S"
        )
    )
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("aiokafka", "faststream", "uvicorn.access", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
