"""Issue 21 item 6 and issue 14 item 4: what a failed upstream tells a key holder.

Before: upstream error text reached clients verbatim, including an upstream echoing the
``Authorization`` header (``Incorrect API key provided: Bearer sk-…``), and transport errors
showed internal addresses (``cannot connect to 127.0.0.1:8099: [Errno 111]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnout_common.devinfra import free_port

from .conftest import Tenant, wait_for

SECRET = "sk-abuse-" + "7" * 32


def test_an_upstream_echoing_the_key_does_not_leak_it(
    system: Any, tenant: Callable[..., Tenant]
) -> None:
    t = tenant(provider={"api_key": SECRET})
    b = t.upstream.behaviour
    b.status = 401
    b.error_body = {"error": {"message": f"Incorrect API key provided: Bearer {SECRET}",
                              "type": "invalid_request_error"}}  # fmt: skip
    try:
        r = t.chat()
    finally:
        b.status, b.error_body = 200, None
    assert r.status_code >= 400
    text = r.text
    assert SECRET not in text and "Incorrect API key" not in text, text
    assert t.model in text or "ab-" in text  # names the provider
    assert "credentials" in r.json()["error"]["message"]
    wait_for(lambda: "attempt on provider" in system.log())
    assert SECRET not in system.log()


def test_transport_errors_do_not_show_addresses(tenant: Callable[..., Tenant]) -> None:
    port = free_port()  # nothing listens there
    t = tenant(provider={"base_url": f"http://127.0.0.1:{port}/v1"})
    r = t.chat()
    assert r.status_code in (502, 503), r.text
    text = r.text
    assert str(port) not in text and "127.0.0.1" not in text and "Errno" not in text, text
    assert "could not be reached" in r.json()["error"]["message"]


def test_no_healthy_upstream_says_when_to_retry(tenant: Callable[..., Tenant]) -> None:
    port = free_port()
    t = tenant(provider={"base_url": f"http://127.0.0.1:{port}/v1"})
    r = t.chat()
    assert r.status_code == 503, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
