"""SPEC §5 through the console in a real Chromium, against the whole running system and a
local upstream: provider → test → models → chat route with a fallback → user → key (shown
once) → a request → the user's usage with exact tokens and cost → revoke.

Every step is the UI only; only the final check that the router refuses the revoked key
talks to the router directly."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI, count_words, prompt_tokens
from turnout_common.testing.waiting import wait_for as poll_until


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, LocalServer]]:
    fake = FakeOpenAI(name="console-gpu")
    fake.behaviour.api_key = "sk-console-upstream-1234"
    server = LocalServer(fake.app).start()
    yield fake, server
    server.stop()


WATCH_ANSWER = """() => {
  window.labSeen = [];
  const el = document.getElementById("lab-answer");
  new MutationObserver(() => {
    const t = el.textContent;
    if (t && window.labSeen[window.labSeen.length - 1] !== t) window.labSeen.push(t);
  }).observe(el, {childList: true, characterData: true, subtree: true});
}"""
"""Records every text the answer shows while it streams (each distinct, in order)."""


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Admin token or virtual key").fill(token)
    page.get_by_role("button", name="Sign in").click()


def toast(page: Any, text: str) -> None:
    expect(page.locator(".toast-success").filter(has_text=text).last).to_be_visible()


def test_spec_walkthrough_in_the_browser(
    page: Any, system: Any, upstream: tuple[FakeOpenAI, LocalServer], shot: Any
) -> None:
    fake, server = upstream
    base = system.url("console")
    tag = uuid.uuid4().hex[:6]
    provider, model, backup, user = f"gpu-{tag}", f"llama-{tag}", f"llama-{tag}-b", f"ann-{tag}"

    sign_in(page, base, system.info["admin_token"])
    # 1. a provider, tested
    page.get_by_role("button", name="Add provider").click()
    page.get_by_label("Name").fill(provider)
    page.get_by_label("Base URL").fill(server.url + "/v1")
    page.get_by_label("API key").fill(fake.behaviour.api_key)
    page.get_by_role("button", name="Create").click()
    toast(page, f"Provider {provider} created.")
    page.goto(base + "/providers?page=1")
    row = page.get_by_role("row").filter(has_text=provider)
    n = 1
    while not row.count():
        n += 1
        page.goto(f"{base}/providers?page={n}")
    row.get_by_role("button", name="Test").click()
    expect(page.locator(".toast").filter(has_text=f"{provider}: healthy")).to_be_visible()

    # 2. two models it serves, priced per 1M tokens
    page.get_by_role("link", name="Models").click()
    for name in (model, backup):
        page.get_by_role("button", name="Add model").click()
        page.get_by_label("Provider", exact=True).fill(provider)
        page.get_by_label("Upstream model").fill(name)
        page.get_by_label("Input price (USD per 1M tokens)").fill("0.2")
        page.get_by_label("Output price (USD per 1M tokens)").fill("0.6")
        page.get_by_label("Context window (tokens)").fill("8192")
        page.get_by_role("button", name="Add", exact=True).click()
        toast(page, f"Model {name} added.")
    page.get_by_label("Search").fill(tag)
    page.get_by_label("Search").press("Enter")  # fill() fires no keyup/change: submit the filter
    expect(page.locator("#models").get_by_role("row")).to_have_count(3)  # head + 2
    shot(page, "models")

    # 3. the chat route, with the second model as its fallback
    page.get_by_role("link", name="Routes").click()
    chat = page.get_by_role("region", name="chat")
    chat.get_by_label("Model").select_option(model)
    chat.get_by_label(re.compile("Fallbacks")).select_option([backup])
    chat.get_by_role("button", name="Save chat route").click()
    toast(page, f"chat now routes to {model} (fallbacks: {backup}).")
    page.reload()
    expect(page.get_by_role("region", name="chat")).to_contain_text(f"Now: {model}")
    shot(page, "routes")

    # 4. a user and a key, the secret shown once
    page.get_by_role("link", name="Users & keys").click()
    page.get_by_role("button", name="Add user").click()
    page.get_by_label("User id").fill(user)
    page.get_by_label("Monthly budget (USD, blank for none)").fill("5")
    page.get_by_role("button", name="Create").click()
    toast(page, f"User {user} created.")
    page.goto(f"{base}/users/{user}")
    page.get_by_label("New key name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text().strip()
    assert len(secret) > 20 and "…" not in secret
    shot(page, "user")
    expect(page.get_by_role("row").filter(has_text="laptop")).to_contain_text("active")
    page.reload()
    assert secret not in page.content()  # shown once, never again

    # 5. the user signs in with the key (once the router knows it) and runs a lab prompt on
    # "auto" (the chat route), watching the answer stream in
    page.get_by_role("button", name="Sign out").click()

    def signed_in_as_user() -> bool:
        sign_in(page, base, secret)
        return page.get_by_role("heading", name="My usage").count() > 0

    assert poll_until(signed_in_as_user, timeout=20, interval=0.5)
    expect(page.locator(".who")).to_contain_text(user)
    page.get_by_role("link", name="Testing lab").click()
    prompt = "hello from the console walkthrough"
    messages = [{"role": "user", "content": prompt}]
    tokens_in, tokens_out = prompt_tokens(messages), count_words(fake.behaviour.reply)
    cost = (tokens_in * Decimal("0.2") + tokens_out * Decimal("0.6")) / Decimal(1_000_000)
    expect(page.get_by_label("Model", exact=True)).to_have_value("auto")
    # a template fills the composer (its prompt and parameters); the prompt is then our own
    page.get_by_label("Template").select_option("explain-quantum")
    expect(page.get_by_label("Prompt")).to_have_value(re.compile("quantum physics"))
    expect(page.get_by_label("Max tokens")).to_have_value("512")
    page.get_by_label("Prompt").fill(prompt)
    fake.behaviour.chunk_delay_s = 0.15  # one word at a time, so the page shows it growing
    page.evaluate(WATCH_ANSWER)
    page.get_by_role("button", name="Send").click()
    answer = page.locator("#lab-answer")
    expect(answer).to_have_text(fake.behaviour.reply, timeout=20_000)
    fake.behaviour.chunk_delay_s = 0.0
    seen = page.evaluate("window.labSeen")
    assert len(seen) >= 3 and all(fake.behaviour.reply.startswith(t) for t in seen), seen
    metrics = page.locator("#lab-metrics")
    expect(metrics.locator('[data-metric="model"]')).to_have_text(model)
    expect(metrics.locator('[data-metric="input_tokens"]')).to_have_text(str(tokens_in))
    expect(metrics.locator('[data-metric="output_tokens"]')).to_have_text(str(tokens_out))
    expect(metrics.locator('[data-metric="ttft_ms"]')).to_contain_text("ms")
    expect(page.locator("#lab-cost [data-cost]")).to_be_visible(timeout=20_000)
    assert Decimal(page.locator("#lab-cost [data-cost]").get_attribute("data-cost")) == cost
    history = page.get_by_role("region", name="History").get_by_role("row").filter(has_text=model)
    expect(history).to_contain_text("explain-quantum")  # the template, as task type
    shot(page, "lab")

    # 6. the request is in the user's usage, exact to the token and cent
    page.get_by_role("link", name="My usage").click()

    def usage_row() -> Any:
        page.reload()
        row = page.get_by_role("row").filter(has_text=model)
        return row if row.count() else None

    row = poll_until(usage_row, timeout=20, interval=0.5)
    assert row is not None
    cells = row.get_by_role("cell").all_inner_texts()
    assert cells[2:4] == [str(tokens_in), str(tokens_out)]
    assert Decimal(cells[4]) == cost
    # this month's credits and the per-day chart (metering's credits and daily rollup)
    credits = page.get_by_role("region", name=re.compile("This month"))

    def spent() -> Decimal | None:
        page.reload()
        shown = Decimal(credits.locator("dt:text-is('Spent') + dd").inner_text().lstrip("$"))
        return shown if shown == cost else None

    assert poll_until(spent, timeout=20, interval=0.5) == cost
    expect(page.locator("#usage-chart canvas")).to_be_visible()
    shot(page, "my-usage")

    # 7. the admin revokes the key; the router refuses it from then on
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, system.info["admin_token"])
    # the admin's usage page: the chart, the sum by model and the CSV hold the same request
    page.get_by_role("link", name="Usage").click()
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#usage-chart canvas")).to_be_visible()
    page.get_by_role("button", name="Cost (USD)").click()
    expect(page.get_by_role("button", name="Cost (USD)")).to_have_attribute("aria-pressed", "true")
    group = page.locator("#usage-groups tbody").get_by_role("row").filter(has_text=model)
    cells = group.get_by_role("cell").all_inner_texts()
    assert cells[1] == "1" and cells[3:5] == [str(tokens_in), str(tokens_out)]
    assert Decimal(cells[5]) == cost
    shot(page, "usage")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    csv_text = open(download.value.path()).read()
    assert model in csv_text and ",lab," in csv_text

    # the admin's lab: the router serves keys only, so the admin pastes one for the run; the
    # key is used, never shown, and the run appears with its user in the lab's history
    page.get_by_role("link", name="Testing lab").click()
    page.get_by_label("Prompt").fill("a second prompt, from the admin")
    page.get_by_label("Virtual key to send as").fill(secret)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#lab-answer")).to_have_text(fake.behaviour.reply, timeout=20_000)
    expect(page.locator("#lab-cost [data-cost]")).to_be_visible(timeout=20_000)
    runs = page.get_by_role("region", name="History").get_by_role("row").filter(has_text=user)
    expect(runs).to_have_count(2)
    assert secret not in page.content()

    page.goto(f"{base}/users/{user}")
    page.get_by_role("row").filter(has_text="laptop").get_by_role("button", name="Revoke").click()
    toast(page, "Key revoked.")
    expect(page.get_by_role("row").filter(has_text="laptop")).to_contain_text("revoked")

    def refused() -> bool:
        resp = httpx.post(
            system.url("router") + "/v1/chat/completions",
            timeout=30,
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "auto", "messages": messages},
        )
        return resp.status_code == 401

    assert poll_until(refused, timeout=20, interval=0.3)
