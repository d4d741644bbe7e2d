"""The console in a real Chromium against the whole running system."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI


def sign_in(page: Any, base: str, token: str) -> None:
    """Sign in with Enter, and wait until the answer (a page, or the form again) loaded."""
    page.goto(base + "/login")
    page.get_by_label("Admin token or virtual key").fill(token)
    with page.expect_navigation():
        page.keyboard.press("Enter")


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, LocalServer]]:
    fake = FakeOpenAI(name="console-browser")
    server = LocalServer(fake.app).start()
    yield fake, server
    server.stop()


def test_admin_signs_in_adds_edits_tests_discovers_and_deletes_a_provider(
    page: Any, system: Any, shot: Any, upstream: tuple[FakeOpenAI, LocalServer]
) -> None:
    _, server = upstream
    cfg, admin = system.url("config") + "/api/v1", system.admin
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

    tag = uuid.uuid4().hex[:6]
    name = f"web-{tag}"
    evil = "<script>alert(1)</script>"
    opener.click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Kind").select_option("openai_compatible")
    page.get_by_label("Base URL").fill(f"http://127.0.0.1:9/{evil}/v1")
    page.get_by_label("API key").fill("sk-typed-in-the-browser")
    shot(page, "provider-dialog")
    page.get_by_label("API key").press("Enter")  # Enter submits
    expect(page.get_by_role("status").filter(has_text=f"Provider {name} created.")).to_be_visible()
    expect(page.locator("#provider-dialog")).not_to_be_visible()
    assert page.get_by_label("API key").input_value() == ""  # cleared after submit
    # a second one, made elsewhere, to sort against
    r = httpx.post(cfg + "/providers", headers=admin, json={
        "name": f"alt-{tag}", "kind": "vllm", "base_url": "http://127.0.0.1:9/v1"})  # fmt: skip
    assert r.status_code == 201, r.text

    # search and sort happen on the server; the address bar keeps them
    page.get_by_label("Search").fill(tag)
    page.get_by_label("Search").press("Enter")
    rows = page.locator("#providers tbody").get_by_role("row")
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(f"search={tag}"))
    page.get_by_role("button", name="Name").click()
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(rows.first).to_contain_text(f"alt-{tag}")
    expect(rows.last).to_contain_text(name)
    page.get_by_role("button", name="Name ▲").click()
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(rows.first).to_contain_text(name)
    page.reload()  # the same rows after a reload
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(name)
    row = page.get_by_role("row").filter(has_text=evil)
    expect(row).to_contain_text(evil)  # the markup is shown as text, never run
    expect(row.locator(".badge")).to_have_text("unknown")
    expect(row).to_contain_text("…")  # the key's hint, with a copy button
    expect(row.get_by_role("button", name=f"Copy the key hint of {name}")).to_be_visible()
    shot(page, "providers")
    # markup typed into the search box comes back as text too
    typed = "<img src=x onerror=alert(2)>"
    page.get_by_label("Search").fill(typed)
    page.get_by_label("Search").press("Enter")
    expect(page.locator("#providers .empty")).to_have_text(f"No provider matches “{typed}”.")
    page.get_by_label("Search").fill(name)
    page.get_by_label("Search").press("Enter")
    expect(rows).to_have_count(1)
    row = rows.first

    # edit: point it at the local upstream with a new key; the old key's hint is shown, the
    # warning says the new key replaces it, and the typed key is gone after saving
    edit = row.get_by_role("button", name="Edit")
    edit.click()
    dialog = page.locator("#provider-edit")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).not_to_be_visible()
    expect(edit).to_be_focused()
    edit.click()
    expect(dialog.locator(".warn")).to_contain_text("replaces the stored one")
    dialog.get_by_label("Base URL").fill(server.url + "/v1")
    dialog.get_by_label("New API key").fill("sk-replaced-9876")
    shot(page, "provider-edit")
    dialog.get_by_role("button", name="Save").click()
    toast = page.get_by_role("status").filter(
        has_text=f"Provider {name} saved. Its key was replaced."
    )
    expect(toast).to_be_visible()
    expect(dialog).not_to_be_visible()
    expect(row).to_contain_text("9876")  # the new key's hint
    assert "sk-replaced-9876" not in page.content()

    row.get_by_role("button", name="Test").click()
    expect(page.locator(".toast-success").filter(has_text=f"{name}: healthy")).to_contain_text(
        "2 models found"
    )
    row.get_by_role("button", name="Discover").click()
    found = page.locator(".toast-success").filter(has_text="models found, 2 added")
    expect(found).to_be_visible()
    expect(row.get_by_role("cell").nth(6)).to_have_text("2")  # the models column

    # a routing rule needs one of its models: the delete is refused with the API's reason
    only = f"only-{tag}"
    r = httpx.post(cfg + "/models", headers=admin, json={
        "provider": name, "upstream_model": f"u-{tag}", "name": only})  # fmt: skip
    assert r.status_code == 201, r.text
    r = httpx.post(cfg + "/routing-rules", headers=admin, json={
        "name": f"keep-{tag}", "task_type": f"never-{tag}", "targets": [only]})  # fmt: skip
    assert r.status_code == 201, r.text
    row.get_by_role("button", name="Delete").click()  # confirm() accepted by the fixture
    refused = page.locator(".toast-error").filter(has_text=only)
    expect(refused).to_be_visible()
    expect(rows).to_have_count(1)
    httpx.delete(cfg + f"/routing-rules/keep-{tag}", headers=admin).raise_for_status()
    row.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status").filter(has_text="Provider deleted.")).to_be_visible()
    expect(page.locator("#providers .empty")).to_have_text(f"No provider matches “{name}”.")
    assert "sk-typed-in-the-browser" not in page.content()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(base + "/providers")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_wrong_token_shows_an_error(page: Any, system: Any) -> None:
    sign_in(page, system.url("console"), "not-a-token")
    expect(page.get_by_role("alert")).to_contain_text("neither an admin token")
