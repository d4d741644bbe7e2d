"""OIDC sign-in (authorization code + PKCE) against a real local identity provider
(``OidcProvider``: discovery, authorize, token, JWKS over HTTP) and a whole system whose
config-api trusts that provider's JWTs: start → callback → signed in, a wrong state, an ID
token with another nonce, a denied sign-in, a non-admin refused, and the SSO button clicked
in a real Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from turnout_common.devinfra import free_port
from turnout_common.testing.oidc import OidcProvider
from turnout_console.oidc import token_expiry, token_label
from turnout_console.sessions import SessionStore

CLIENT_ID = "turnout-console"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def sso() -> Iterator[OidcProvider]:
    with OidcProvider(CLIENT_ID) as provider:
        yield provider


@pytest.fixture(scope="module")
def sso_system(
    sso: OidcProvider, start_own_system: Callable[..., AbstractContextManager[Any]]
) -> Iterator[Any]:
    port = free_port()
    env = {
        "TURNOUT_OIDC_ISSUER": sso.issuer,
        "TURNOUT_OIDC_JWKS_URL": sso.jwks_url,
        "TURNOUT_OIDC_AUDIENCE": sso.audience,
        "TURNOUT_CONSOLE_PORT": str(port),
        "TURNOUT_CONSOLE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TURNOUT_CONSOLE_OIDC_CLIENT_ID": CLIENT_ID,
    }
    with start_own_system("console_oidc", env) as system:
        yield system


@pytest.fixture(autouse=True)
def _reset(sso: OidcProvider) -> Iterator[None]:
    yield
    sso.next_roles = ["admin"]
    sso.deny = False
    sso.id_nonce = None


def _to_provider(console: httpx.Client) -> tuple[str, dict[str, str]]:
    """GET /auth/oidc/start: the authorize URL and its query."""
    start = console.get("/auth/oidc/start")
    assert start.status_code == 303, start.text
    location = start.headers["location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _back_from_provider(location: str) -> str:
    """The provider's redirect back to the console (its /authorize checks the PKCE params)."""
    answer = httpx.get(location, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def test_sso_sign_in_opens_an_admin_session(sso: OidcProvider, sso_system: Any) -> None:
    base = sso_system.url("console")
    with httpx.Client(base_url=base, follow_redirects=False) as console:
        assert "Sign in with SSO" in console.get("/login").text
        location, query = _to_provider(console)
        assert location.startswith(f"{sso.issuer}/authorize?")
        assert query["code_challenge_method"] == "S256"
        assert query["redirect_uri"] == f"{base}/auth/oidc/callback"
        assert query["client_id"] == CLIENT_ID and query["state"] and query["nonce"]
        flow_cookie = console.cookies.get("turnout_console_oidc")
        assert flow_cookie and query["code_challenge"] not in flow_cookie  # not in clear
        back = _back_from_provider(location)
        done = console.get(back)
        assert done.status_code == 200 and "Signed in" in done.text, done.text
        sent = sso.token_requests[-1]
        assert sent["grant_type"] == "authorization_code" and len(sent["code_verifier"]) >= 43
        assert console.get("/").headers["location"] == "/providers"
        providers = console.get("/providers")
        assert providers.status_code == 200 and "Providers" in providers.text
        assert "sso-user (SSO)" in providers.text
    assert sso.token(["admin"]).split(".")[0] not in sso_system.log()


def test_a_wrong_state_is_refused(sso: OidcProvider, sso_system: Any) -> None:
    with httpx.Client(base_url=sso_system.url("console"), follow_redirects=False) as console:
        location, query = _to_provider(console)
        back = _back_from_provider(location)
        forged = back.replace(f"state={query['state']}", "state=someone-elses-state")
        refused = console.get(forged)
        assert refused.status_code == 400 and "state mismatch" in refused.text
        assert "Sign in with SSO" in refused.text
        assert console.get("/providers").status_code == 303  # no session
        # the code alone, without the flow cookie of the browser that started, is refused too
        with httpx.Client(base_url=sso_system.url("console")) as other:
            assert other.get(back, follow_redirects=False).status_code == 400


def test_an_id_token_with_another_nonce_is_refused(sso: OidcProvider, sso_system: Any) -> None:
    """The ID token must carry the nonce this browser's authorization request sent: one
    minted for another sign-in (replayed, or injected with a stolen code) opens no session."""
    sso.id_nonce = "the-nonce-of-another-sign-in"
    with httpx.Client(base_url=sso_system.url("console"), follow_redirects=False) as console:
        location, query = _to_provider(console)
        assert query["nonce"] != sso.id_nonce
        refused = console.get(_back_from_provider(location))
        assert refused.status_code == 401, refused.text
        assert "nonce mismatch" in refused.text and "Sign in with SSO" in refused.text
        assert console.get("/providers").status_code == 303  # no session
    sso.id_nonce = None
    with httpx.Client(base_url=sso_system.url("console"), follow_redirects=False) as console:
        location, _ = _to_provider(console)  # the right nonce: signed in
        assert console.get(_back_from_provider(location)).status_code == 200


def test_a_non_admin_is_refused_with_a_clear_page(sso: OidcProvider, sso_system: Any) -> None:
    sso.next_roles = ["viewer"]
    with httpx.Client(base_url=sso_system.url("console"), follow_redirects=False) as console:
        location, _ = _to_provider(console)
        refused = console.get(_back_from_provider(location))
        assert refused.status_code == 403 and "not a Turnout admin" in refused.text
        assert console.get("/providers").status_code == 303


def test_a_denied_sign_in_says_so(sso: OidcProvider, sso_system: Any) -> None:
    sso.deny = True
    with httpx.Client(base_url=sso_system.url("console"), follow_redirects=False) as console:
        location, _ = _to_provider(console)
        refused = console.get(_back_from_provider(location))
        assert refused.status_code == 401 and "access_denied" in refused.text


@pytest.fixture
def browser(sso_system: Any) -> Iterator[Any]:
    """This module's system is its own (OIDC on), so the browser waits for it instead."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_sso_button_signs_an_admin_in(page: Any, sso_system: Any, shot: Any) -> None:
    page.goto(sso_system.url("console") + "/login")
    page.get_by_role("link", name="Sign in with SSO").click()
    page.wait_for_url("**/providers")
    assert page.get_by_role("heading", name="Providers").is_visible()
    shot(page, "sso-signed-in")


def test_a_failed_token_exchange_says_so(sso: OidcProvider, sso_system: Any) -> None:
    with httpx.Client(base_url=sso_system.url("console"), follow_redirects=False) as console:
        location, _ = _to_provider(console)
        back = _back_from_provider(location)
        code = parse_qs(urlsplit(back).query)["code"][0]
        refused = console.get(back.replace(f"code={code}", "code=not-a-code-it-issued"))
        assert refused.status_code == 502 and "refused the sign-in (HTTP 400)" in refused.text
        assert console.get("/providers").status_code == 303


def test_an_sso_session_ends_no_later_than_the_token() -> None:
    store = SessionStore(3600, lambda: 1_000.0)
    assert store.create("admin", "t", "admin (SSO)", None, 1_300.0).expires_at == 1_300.0
    assert store.create("admin", "t", "admin", None, 9_000.0).expires_at == 4_600.0
    assert token_expiry("a." + "eyJleHAiOiAxMjN9" + ".c") == 123.0
    assert token_expiry("not-a-jwt") is None
    assert token_label("a." + "eyJzdWIiOiAiYm9iIn0" + ".c") == "bob (SSO)"
    assert token_label("not-a-jwt") == "admin (SSO)"
