"""Which attempts count against a provider's passive health."""

from __future__ import annotations

import pytest

from turnout_common.events import Attempt
from turnout_health.passive import attempt_failed


def attempt(status: int | None, error: str | None) -> Attempt:
    return Attempt(
        provider_id="p",
        provider="p",
        model="m",
        upstream_model="m",
        deployment_id="d",
        status=status,
        error=error,
    )


@pytest.mark.parametrize(
    ("status", "error", "failed"),
    [
        (200, None, False),
        (503, "upstream_unavailable", True),  # the router's mapping of a connect error
        (504, "upstream_timeout", True),
        (500, "upstream_error", True),
        (429, "rate_limit_exceeded", False),  # busy, not sick
        (400, "context_length_exceeded", False),
        (None, "provider_key_unavailable", False),  # the router's own problem
        (None, "no_adapter", False),
    ],
)
def test_only_upstream_failures_count(status: int | None, error: str | None, failed: bool) -> None:
    assert attempt_failed(attempt(status, error)) is failed
