"""The health page in a real Chromium: a provider's probes as a strip, probe now, force it
down with a reason and clear that (the health-worker's override API)."""

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
    server = LocalServer(FakeOpenAI(name="console-health").app).start()
    yield server
    server.stop()


def test_history_strip_check_and_override(
    page: Any, system: Any, shot: Any, upstream: LocalServer
) -> None:
    cfg, admin = system.url("config") + "/api/v1", system.admin
    name = f"hl-{uuid.uuid4().hex[:6]}"
    r = httpx.post(cfg + "/providers", headers=admin, json={
        "name": name, "kind": "openai_compatible", "base_url": upstream.url + "/v1"})  # fmt: skip
    assert r.status_code == 201, r.text
    base = system.url("console")
    sign_in(page, base, system.info["admin_token"])
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()

    def row() -> Any:  # the health-worker learns of the provider over Kafka
        page.goto(base + "/health?status=&sort=name")
        n = 1
        found = page.get_by_role("row").filter(has_text=name)
        while not found.count() and page.get_by_role("button", name="Next").count():
            n += 1
            page.get_by_role("button", name="Next").click()
            expect(page.locator(".pager")).to_contain_text(f"page {n} of")
        return found if found.count() else None

    found = poll_until(row, timeout=20, interval=0.5)
    assert found is not None
    found.get_by_role("button", name=f"Check {name} now").click()
    expect(page.locator(".toast-success").filter(has_text="Probe: healthy")).to_be_visible()
    expect(found.locator(".strip .tick").first).to_be_visible()
    expect(found.locator(".badge")).to_have_text("healthy")

    found.get_by_role("button", name=f"Override {name}").click()
    dialog = page.locator("#override-dialog")
    expect(dialog.get_by_label("down")).to_be_focused()
    dialog.get_by_label("Reason").fill("maintenance <b>window</b>")
    dialog.get_by_label("Ends after (hours, blank: until cleared)").fill("2")
    dialog.get_by_label("Reason").press("Enter")
    expect(page.get_by_role("status").filter(has_text="Forced down.")).to_be_visible()
    expect(dialog).not_to_be_visible()
    expect(found).to_contain_text("forced down")
    # the override leads (what the router sees), the probes' own reading follows
    expect(found.locator(".badge")).to_have_text("forced down")
    expect(found.locator(".badge")).to_have_class("badge badge-down")
    expect(found).to_contain_text("probes: healthy")
    expect(found).to_contain_text("maintenance <b>window</b>")  # text, not markup
    shot(page, "health")
    health = httpx.get(system.url("health") + "/api/v1/health/providers", headers=admin).json()
    mine = next(p for p in health["data"] if p["name"] == name)
    assert mine["override"]["status"] == "down" and mine["override"]["expires_at"]

    # the default order is the worst first, an override counting as what it forces: among
    # the providers the probes find healthy, this forced-down one leads
    page.goto(base + "/health?status=healthy")
    expect(page.locator("#h-sort")).to_have_value("status")
    expect(page.locator("#health tbody tr").first).to_contain_text(name)
    found = poll_until(row, timeout=20, interval=0.5)  # back to the order by name
    assert found is not None

    found.get_by_role("button", name=f"Clear the override of {name}").click()
    expect(page.get_by_role("status").filter(has_text="Override cleared.")).to_be_visible()
    expect(found).not_to_contain_text("forced down")
    expect(found.locator(".badge")).to_have_text("healthy")

    # forced up: the badge says so in the healthy colour, the probes' reading beside it
    found.get_by_role("button", name=f"Override {name}").click()
    dialog.get_by_label("up", exact=True).check()
    dialog.get_by_label("Reason").fill("serve it through the upgrade")
    dialog.get_by_label("Reason").press("Enter")
    expect(page.get_by_role("status").filter(has_text="Forced up.")).to_be_visible()
    expect(found.locator(".badge")).to_have_text("forced up")
    expect(found.locator(".badge")).to_have_class("badge badge-healthy")
    expect(found).to_contain_text("probes: healthy")
    found.get_by_role("button", name=f"Clear the override of {name}").click()
    expect(found.locator(".badge")).to_have_text("healthy")
