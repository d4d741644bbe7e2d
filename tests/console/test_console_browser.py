"""The console in a real Chromium against the whole running system."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import expect


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Admin token or virtual key").fill(token)
    page.keyboard.press("Enter")


def test_admin_signs_in_adds_tests_and_deletes_a_provider(
    page: Any, system: Any, shot: Any
) -> None:
    base = system.url("console")
    page.goto(base + "/providers")
    expect(page).to_have_url(re.compile(r"/login"))
    shot(page, "login")
    sign_in(page, base, system.info["admin_token"])
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()

    # the dialog: focus moves in, Esc closes it, focus returns to the opener
    opener = page.get_by_role("button", name="Add provider")
    opener.click()
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#provider-dialog")).not_to_be_visible()
    expect(opener).to_be_focused()

    name = f"web-{uuid.uuid4().hex[:6]}"
    evil = "<script>alert(1)</script>"
    opener.click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Kind").select_option("openai_compatible")
    page.get_by_label("Base URL").fill(f"http://127.0.0.1:9/{evil}/v1")
    page.get_by_label("API key").fill("sk-typed-in-the-browser")
    shot(page, "provider-dialog")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status").filter(has_text=f"Provider {name} created.")).to_be_visible()
    expect(page.locator("#provider-dialog")).not_to_be_visible()
    assert page.get_by_label("API key").input_value() == ""  # cleared after submit
    # find the new row on whichever page it landed
    row = page.get_by_role("row").filter(has_text=name)
    expect(page.locator(".pager")).to_contain_text("page 1 of")
    n = 1
    while not row.count() and page.get_by_role("button", name="Next").count():
        n += 1
        page.get_by_role("button", name="Next").click()
        expect(page.locator(".pager")).to_contain_text(f"page {n} of")
    expect(row).to_contain_text(evil)  # the markup is shown as text, never run
    expect(row.locator(".badge")).to_have_text("unknown")
    shot(page, "providers")

    row.get_by_role("button", name="Test").click()
    # the test's own toast ("<name>: healthy/down in … ms"), not the earlier "created" one
    expect(page.locator(".toast").filter(has_text=f"{name}: ")).to_be_visible()
    row.get_by_role("button", name="Delete").click()  # confirm() accepted by the fixture
    expect(page.get_by_role("status").filter(has_text="Provider deleted.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=name)).to_have_count(0)
    assert "sk-typed-in-the-browser" not in page.content()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(base + "/providers")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_wrong_token_shows_an_error(page: Any, system: Any) -> None:
    sign_in(page, system.url("console"), "not-a-token")
    expect(page.get_by_role("alert")).to_contain_text("neither an admin token")
