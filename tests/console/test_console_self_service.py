"""The end user's pages in a real Chromium, signed in with a virtual key: the model catalog
with prices and the cost calculator, their own provider keys (BYOK: add, test, replace,
remove) and their own keys (create, shown once; revoke)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.console.test_console_browser import sign_in

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for as poll_until


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalServer]:
    server = LocalServer(FakeOpenAI(name="console-byok").app).start()
    yield server
    server.stop()


def test_catalog_provider_keys_and_own_keys(
    page: Any, system: Any, shot: Any, upstream: LocalServer
) -> None:
    cfg, admin = system.url("config") + "/api/v1", system.admin
    tag = uuid.uuid4().hex[:6]
    provider, model, user = f"cloud-{tag}", f"cat-{tag}", f"self-{tag}"
    made = [
        ("/providers", {"name": provider, "kind": "openai", "base_url": upstream.url + "/v1",
                        "byok_enabled": True}),
        ("/models", {"provider": provider, "upstream_model": "fake-small", "name": model,
                     "input_price_per_mtok": "1.5", "output_price_per_mtok": "4",
                     "context_window": 128000, "capabilities": {"tools": True}}),
        ("/users", {"id": user}),
    ]  # fmt: skip
    for path, body in made:
        r = httpx.post(cfg + path, headers=admin, json=body)
        assert r.status_code == 201, r.text
    key = httpx.post(cfg + "/keys", headers=admin, json={"user_id": user, "name": "first"})
    secret = key.json()["key"]
    base = system.url("console")

    def signed_in() -> bool:
        sign_in(page, base, secret)
        return page.get_by_role("heading", name="My usage").count() > 0

    assert poll_until(signed_in, timeout=20, interval=0.5)

    # the catalog: the model with its prices, found by search; the calculator prices it
    page.get_by_role("link", name="Model catalog").click()
    page.get_by_label("Search").fill(tag)
    page.get_by_role("button", name="Apply").click()
    row = page.locator("#catalog tbody tr").filter(has_text=model)
    expect(row).to_contain_text("$1.5")
    expect(row).to_contain_text("128,000")
    expect(row).to_contain_text("tools")
    page.get_by_label("Input tokens").fill("1000000")
    page.get_by_label("Output tokens").fill("500000")
    row.get_by_role("button", name=f"Price {model} in the calculator").click()
    expect(page.locator("#calc-result")).to_have_text("$3.500000")
    shot(page, "catalog")

    # my provider keys: add, test, replace (the hint changes), remove
    page.get_by_role("link", name="My provider keys").click()
    byok = page.locator("#byok tbody tr").filter(has_text=provider)
    byok.get_by_label(f"Your key for {provider}").fill("sk-mine-aaaa1111")
    byok.get_by_label(f"Your key for {provider}").press("Enter")
    expect(page.get_by_role("status").filter(has_text=f"Key for {provider} saved")).to_be_visible()
    expect(byok).to_contain_text("1111")
    byok.get_by_role("button", name=f"Test my key for {provider}").click()
    expect(page.locator(".toast-success").filter(has_text=f"{provider}: healthy")).to_be_visible()
    byok.get_by_label(f"New key for {provider}").fill("sk-mine-bbbb2222")
    byok.get_by_role("button", name="Replace").click()
    expect(byok).to_contain_text("2222")
    assert byok.get_by_label(f"New key for {provider}").input_value() == ""
    shot(page, "my-provider-keys")
    assert "sk-mine-aaaa1111" not in page.content() and "sk-mine-bbbb2222" not in page.content()
    byok.get_by_role("button", name=f"Remove my key for {provider}").click()
    expect(page.get_by_role("status").filter(has_text="Key removed.")).to_be_visible()
    expect(byok.get_by_role("cell").nth(2)).to_have_text("—")

    # my keys: a new one, shown once; then revoked
    page.get_by_role("link", name="My usage").click()
    page.get_by_label("New key name").fill("ci")
    page.get_by_role("button", name="Create key").click()
    new = page.locator("#new-key").inner_text().strip()
    assert len(new) > 20 and new != secret
    mine = page.locator("#my-keys tbody tr")
    expect(mine).to_have_count(2)
    mine.filter(has_text="ci").get_by_role("button", name="Revoke ci").click()
    expect(page.get_by_role("status").filter(has_text="Key revoked.")).to_be_visible()
    expect(mine.filter(has_text="ci")).to_contain_text("revoked")
    page.reload()
    assert new not in page.content()
