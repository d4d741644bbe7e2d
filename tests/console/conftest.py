"""A real Chromium (Debian's package) driven by Playwright; screenshots land in
``.artifacts/console/`` (ignored by git). No chromium is a failure, never a skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TURNOUT_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORT_CSP = (
    "document.addEventListener('securitypolicyviolation', e => console.error("
    "'Content Security Policy violation', e.violatedDirective, e.sourceFile, e.lineNumber))"
)
"""Says which file and line broke the policy (Chromium's own message names neither)."""
REPORT_CSP = (
    "document.addEventListener('securitypolicyviolation', e => console.error("
    "'Content Security Policy violation', e.violatedDirective, e.sourceFile, e.lineNumber))"
)
"""Says which file and line broke the policy (Chromium's own message names neither)."""
SHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "console"


@pytest.fixture
def browser(system: Any) -> Iterator[Any]:
    """Per test, after ``system``: Playwright's sync API holds an event loop on this thread
    while it runs, and the fixtures that start the system use asyncio.run."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context 1024 px wide; any CSP violation or script error fails the test."""
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.add_init_script(REPORT_CSP)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"{page.url}: {msg.text[:300]}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )

    def on_dialog(dialog: Any) -> None:  # confirm() is accepted; alert() means script ran
        if dialog.type != "confirm":
            problems.append(f"unexpected {dialog.type}: {dialog.message}")
        dialog.accept()

    page.on("dialog", on_dialog)
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


@pytest.fixture
def shot() -> Any:
    """``shot(page, "providers")`` saves a full-page PNG under .artifacts/console/."""

    def take(page: Any, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take
