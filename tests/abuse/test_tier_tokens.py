"""Issue 21 item 5: a tier's tokens-per-minute limit counts output tokens too.

Before: a tier with ``tpm_limit: 1000`` served 300 requests (13,200 tokens) in a second,
because only the key's bucket settled to the real count after the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .conftest import Tenant


def test_tier_bucket_settles_to_real_tokens(tenant: Callable[..., Tenant]) -> None:
    t = tenant(tier={"tpm_limit": 1000})
    t.upstream.behaviour.reply = " ".join(["word"] * 40)  # 40 output tokens per answer
    started = time.monotonic()
    try:
        served = 0
        tokens = 0
        for _ in range(300):
            r = t.chat("hi")  # estimated at a couple of tokens before the answer
            if r.status_code == 429:
                break
            assert r.status_code == 200, r.text
            served += 1
            tokens += r.json()["usage"]["total_tokens"]
        elapsed = time.monotonic() - started
    finally:
        t.upstream.behaviour.reply = "Hello from the fake upstream, how can I help"
    # the bucket refills at 1000/60 tokens a second while the loop runs (slow on a loaded
    # machine), plus one answer of slack: before the fix this was 13,200 tokens in a second
    refill = elapsed * 1000 / 60
    assert served < 40 + refill / 44, (served, tokens, elapsed)
    assert tokens <= 1000 + refill + 50, (served, tokens, elapsed)
