"""The routing-rules editor in a real Chromium: create, edit, reorder by priority, delete."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import expect
from tests.console.test_console_browser import sign_in


def test_admin_creates_edits_reorders_and_deletes_rules(page: Any, system: Any, shot: Any) -> None:
    cfg, admin = system.url("config") + "/api/v1", system.admin
    tag = uuid.uuid4().hex[:6]
    provider, model = f"rules-{tag}", f"rm-{tag}"
    r = httpx.post(cfg + "/providers", headers=admin, json={
        "name": provider, "kind": "vllm", "base_url": "http://127.0.0.1:9/v1"})  # fmt: skip
    assert r.status_code == 201, r.text
    r = httpx.post(cfg + "/models", headers=admin, json={
        "provider": provider, "upstream_model": "m", "name": model})  # fmt: skip
    assert r.status_code == 201, r.text
    first, second = f"a-{tag}", f"b-{tag}"

    sign_in(page, system.url("console"), system.info["admin_token"])
    page.get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name="Routing rules")).to_be_visible()
    dialog = page.locator("#rule-dialog")
    for name, prio, task in ((first, "-900001", f"code-{tag}"), (second, "-900000", "")):
        page.get_by_role("button", name="Add rule").click()
        expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
        dialog.get_by_label("Name", exact=True).fill(name)
        dialog.get_by_label("Priority (lower runs first)").fill(prio)
        dialog.get_by_label("Task type").fill(task)
        dialog.get_by_label("Then send to").fill(model)
        dialog.get_by_label("Then send to").press("Enter")  # Enter submits
        expect(page.get_by_role("status").filter(has_text=f"Rule {name} created.")).to_be_visible()
        expect(dialog).not_to_be_visible()
    rows = page.locator("#rules tbody tr")
    expect(rows.nth(0)).to_contain_text(first)
    expect(rows.nth(0)).to_contain_text(f"task type = code-{tag}")
    expect(rows.nth(1)).to_contain_text(second)
    expect(rows.nth(1)).to_contain_text("always")

    # edit: a power level and a token bound become conditions; a bad bound is refused
    rows.nth(1).get_by_role("button", name="Edit").click()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value(second)
    dialog.get_by_label("Power level").select_option("eco")
    dialog.get_by_label("At least (tokens)").fill("500")
    dialog.get_by_label("At most (tokens)").fill("100")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".toast-error").filter(has_text="min_tokens")).to_be_visible()
    dialog.get_by_label("At most (tokens)").fill("")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text=f"Rule {second} saved.")).to_be_visible()
    expect(rows.nth(1)).to_contain_text("power level = eco, ≥ 500 tokens")
    shot(page, "rules")

    # reorder: the second moves above the first (their priorities swap)
    rows.nth(1).get_by_role("button", name=f"Move {second} up").click()
    expect(page.get_by_role("status").filter(has_text=f"{second} moved up.")).to_be_visible()
    expect(rows.nth(0)).to_contain_text(second)
    expect(rows.nth(0)).to_contain_text("-900001")
    expect(rows.nth(1)).to_contain_text(first)
    api = httpx.get(cfg + "/routing-rules", headers=admin).json()["data"]
    mine = [r["name"] for r in api if r["name"] in (first, second)]
    assert mine == [second, first]

    for name in (first, second):
        page.locator("#rules tbody tr").filter(has_text=name).get_by_role(
            "button", name="Delete"
        ).click()
        expect(page.get_by_role("status").filter(has_text="Rule deleted.").last).to_be_visible()
        expect(page.locator("#rules tbody tr").filter(has_text=name)).to_have_count(0)

    # the model those rules sent to: edited in its dialog (prices, deprecation, a fallback)
    r = httpx.post(cfg + "/models", headers=admin, json={
        "provider": provider, "upstream_model": "m2", "name": f"{model}-b"})  # fmt: skip
    assert r.status_code == 201, r.text
    page.get_by_role("link", name="Models").click()
    page.get_by_label("Search").fill(model)
    page.get_by_label("Search").press("Enter")
    row = page.locator("#models tbody tr").filter(has_text=f"{model}").first
    expect(page.locator("#models tbody tr")).to_have_count(2)
    page.get_by_role("button", name=f"Edit {model}", exact=True).click()
    edit = page.locator("#model-edit")
    expect(edit.get_by_label("Public name")).to_be_focused()
    edit.get_by_label("Input price (USD per 1M tokens)").fill("0.25")
    edit.get_by_label("Output price (USD per 1M tokens)").fill("1.25")
    edit.get_by_label("Fallbacks").fill(f"{model}-b")
    edit.get_by_label("Deprecated").check()
    edit.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text=f"Model {model} saved.")).to_be_visible()
    expect(edit).not_to_be_visible()
    got = httpx.get(cfg + "/models", headers=admin, params={"search": model}).json()["data"]
    mine = next(m for m in got if m["name"] == model)
    assert mine["fallbacks"] == [f"{model}-b"] and mine["deprecated"], mine
    assert mine["input_price_per_mtok"] == "0.25", mine
    expect(row).to_contain_text("0.25", timeout=15_000)  # after the table refreshed
    expect(row).to_contain_text("deprecated")
