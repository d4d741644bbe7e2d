"""Tiers, a user's settings and credits in a real Chromium: a tier added and edited, a user
moved to it with a budget, credit granted and adjusted, the ledger and the users list."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import expect
from tests.console.test_console_browser import sign_in


def test_tiers_settings_and_credits(page: Any, system: Any, shot: Any) -> None:
    cfg, admin = system.url("config") + "/api/v1", system.admin
    tag = uuid.uuid4().hex[:6]
    tier, user = f"gold{tag}", f"cred-{tag}"
    r = httpx.post(cfg + "/users", headers=admin, json={"id": user})
    assert r.status_code == 201, r.text
    base = system.url("console")
    sign_in(page, base, system.info["admin_token"])
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()

    # a tier, added then edited in its row
    page.goto(base + "/tiers")
    page.get_by_label("Name of the new tier").fill(tier)
    page.get_by_label("Monthly credits of the new tier").fill("12.5")
    page.get_by_label("Requests per minute of the new tier").fill("60")
    page.get_by_label("Lab runs per month of the new tier").fill("25")
    page.get_by_role("button", name="Add tier").click()
    expect(page.get_by_role("status").filter(has_text=f"Tier {tier} saved.")).to_be_visible()
    expect(page.get_by_label(f"Requests per minute of {tier}")).to_have_value("60")
    page.get_by_label(f"Requests per minute of {tier}").fill("90")
    page.get_by_label(f"BYOK fee of {tier}").fill("5.123456")  # config-api: 4 decimals
    page.get_by_role("row").filter(has=page.get_by_label(f"Rank of {tier}")).get_by_role(
        "button", name="Save"
    ).click()
    expect(page.locator(".toast-error").filter(has_text="byok_fee_pct")).to_be_visible()
    page.get_by_label(f"BYOK fee of {tier}").fill("5")
    page.get_by_role("row").filter(has=page.get_by_label(f"Rank of {tier}")).get_by_role(
        "button", name="Save"
    ).click()
    # this save's own toast: "Add tier"'s "Tier … saved." may still be shown (toasts last 6 s),
    # so a locator by its text matches one or two toasts, the old one even before this save
    # answered. Toasts are appended and leave in order, and the error toast came after the old
    # one: the last toast reads "saved" only once this save's answer arrived.
    expect(page.locator("#toasts > .toast").last).to_have_text(f"Tier {tier} saved.")
    got = {t["name"]: t for t in httpx.get(cfg + "/tiers", headers=admin).json()["data"]}
    assert got[tier]["rpm_limit"] == 90 and got[tier]["monthly_credits_usd"] == "12.5"
    assert got[tier]["lab_monthly_quota"] == 25  # kept through the edit (a PUT of every field)
    shot(page, "tiers")

    # the user: moved to the tier with a budget, then credit granted and adjusted
    page.goto(f"{base}/users/{user}")
    page.get_by_text("Change tier, budget or state").click()
    page.get_by_label("Tier", exact=True).select_option(tier)
    page.get_by_label("Monthly budget (USD, blank for none)").fill("7")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text=f"User {user} saved.")).to_be_visible()
    expect(page.locator("#user-detail")).to_contain_text(f"Tier {tier}")
    page.get_by_label("Grant (USD)").fill("5")
    page.get_by_role("button", name="Grant").click()
    expect(page.get_by_role("status").filter(has_text="Granted $5.")).to_be_visible()
    # the details refresh after the grant: wait for it before typing into them
    expect(page.locator("#user-detail table").last).to_contain_text("granted in the console")
    page.get_by_label("Adjust balance (USD, negative takes away)").fill("-2")
    page.get_by_label("Why").fill("refund reversed")
    page.get_by_role("button", name="Adjust").click()
    expect(page.get_by_role("status").filter(has_text="Balance adjusted by $-2.")).to_be_visible()
    ledger = page.locator("#user-detail table").last
    expect(ledger).to_contain_text("refund reversed")
    expect(ledger).to_contain_text("granted in the console")
    expect(page.locator("#user-detail")).to_contain_text(
        "prepaid balance $15.5"
    )  # 12.5 monthly + 5 - 2
    shot(page, "user-credits")

    # the users list shows the month's spend and what remains of the budget
    page.goto(base + "/users")
    row = page.get_by_role("row").filter(has_text=user)
    n = 1
    while not row.count() and page.get_by_role("button", name="Next").count():
        n += 1
        page.get_by_role("button", name="Next").click()
        expect(page.locator(".pager")).to_contain_text(f"page {n} of")
    cells = row.get_by_role("cell").all_inner_texts()
    assert cells[1] == tier and cells[2].startswith("7")
    assert cells[3].strip("0.") == "" and cells[4] != "—", cells
