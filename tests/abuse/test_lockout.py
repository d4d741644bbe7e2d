"""Issue 21 item 2 and issue 14 item 3: one request must not lock a user out.

Before: ``max_tokens: 9223372036854775807`` was refused (400) after its tokens had been taken
from the tier's bucket, and every key of the user then got 429 with
``Retry-After: 553402322211210``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .conftest import Tenant

HUGE = 9223372036854775807


def test_huge_max_tokens_is_refused_and_takes_nothing(tenant: Callable[..., Tenant]) -> None:
    t = tenant(keys=2, tier={"tpm_limit": 1000, "rpm_limit": 100})
    r = t.chat(max_tokens=HUGE)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "max_tokens"
    # a request larger than the tokens-per-minute limit can never pass: 413, not a 429
    # that SDKs would retry for minutes; and it takes nothing either
    r = t.chat(max_tokens=5000)
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "request_too_large"
    assert "1000 tokens per minute" in err["message"]
    for key in (0, 1):  # every key of the user still works
        r = t.chat(key=key, max_tokens=50)
        assert r.status_code == 200, r.text


def test_retry_after_never_exceeds_the_window(tenant: Callable[..., Tenant]) -> None:
    t = tenant(tier={"rpm_limit": 2})
    assert t.chat().status_code == 200
    assert t.chat().status_code == 200
    r = t.chat()
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "tier" in r.json()["error"]["message"]  # says which limit capped it


def test_a_key_limit_above_the_tier_says_the_tier_capped_it(
    tenant: Callable[..., Tenant],
) -> None:
    t = tenant(tier={"rpm_limit": 1}, key_limits={"rpm_limit": 100})
    assert t.chat().status_code == 200
    r = t.chat()
    assert r.status_code == 429
    message = r.json()["error"]["message"]
    assert "tier" in message and "1 requests per minute" in message, message


def test_rate_limit_headers_on_answers(tenant: Callable[..., Tenant]) -> None:
    t = tenant(tier={"rpm_limit": 50, "tpm_limit": 100_000})
    r = t.chat(max_tokens=20)
    assert r.status_code == 200, r.text
    h: Any = r.headers
    assert h["x-ratelimit-limit-requests"] == "50"
    assert h["x-ratelimit-remaining-requests"] == "49"
    assert h["x-ratelimit-limit-tokens"] == "100000"
    assert int(h["x-ratelimit-remaining-tokens"]) < 100_000
    assert h["x-ratelimit-reset-requests"].endswith(("ms", "s"))
