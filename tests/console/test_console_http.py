"""The console over plain HTTP against the whole running system: sign-in, the session cookie,
CSRF refusal, escaping, headers. Browser behaviour is in test_console_browser.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from turnout_console.security import CSP


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(base: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    page = client.get("/login")
    resp = client.post("/login", data={"token": token, "csrf_token": _csrf(page.text)})
    assert resp.status_code == 303, resp.text
    return client


@pytest.fixture
def admin(system: Any) -> Iterator[httpx.Client]:
    client = sign_in(system.url("console"), system.info["admin_token"])
    try:
        yield client
    finally:
        client.close()


def page_csrf(client: httpx.Client, path: str = "/providers") -> str:
    return _csrf(client.get(path).text)


def test_ops_endpoints_and_security_headers(system: Any) -> None:
    base = system.url("console")
    assert httpx.get(base + "/healthz").status_code == 200
    assert httpx.get(base + "/readyz").status_code == 200
    assert "turnout_http_requests_total" in httpx.get(base + "/metrics").text
    resp = httpx.get(base + "/login")
    assert resp.headers["content-security-policy"] == CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_signed_out_pages_redirect_to_sign_in(system: Any) -> None:
    base = system.url("console")
    resp = httpx.get(base + "/providers")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    htmx = httpx.get(base + "/providers/table", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/login")


def test_admin_sign_in_sets_a_strict_httponly_cookie_and_signs_out(system: Any) -> None:
    base = system.url("console")
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        login = client.get("/login")
        resp = client.post(
            "/login", data={"token": system.info["admin_token"], "csrf_token": _csrf(login.text)}
        )
        assert resp.status_code == 303 and resp.headers["location"] == "/"
        cookie = resp.headers["set-cookie"]
        assert "turnout_console=" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
        assert system.info["admin_token"] not in cookie  # only a random session id
        assert client.get("/").headers["location"] == "/providers"
        page = client.get("/providers")
        assert page.status_code == 200 and "Providers" in page.text
        out = client.post("/logout", data={"csrf_token": _csrf(page.text)})
        assert out.status_code == 303
        assert client.get("/providers").status_code == 303  # the session is gone


def test_a_wrong_token_is_refused_without_a_session(system: Any) -> None:
    base = system.url("console")
    with httpx.Client(base_url=base) as client:
        login = client.get("/login")
        resp = client.post("/login", data={"token": "sk-nope", "csrf_token": _csrf(login.text)})
        assert resp.status_code == 401
        assert "neither an admin token nor a valid virtual key" in resp.text
        assert "turnout_console=" not in resp.headers.get("set-cookie", "")


def test_sign_in_without_the_login_csrf_cookie_is_refused(system: Any) -> None:
    resp = httpx.post(
        system.url("console") + "/login",
        data={"token": system.info["admin_token"], "csrf_token": "forged"},
    )
    assert resp.status_code == 403
    assert "turnout_console=" not in resp.headers.get("set-cookie", "")


def test_state_changing_requests_without_the_csrf_token_are_refused(
    system: Any, admin: httpx.Client
) -> None:
    name = f"csrf-{uuid.uuid4().hex[:8]}"
    form = {"name": name, "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}
    assert admin.post("/providers", data=form).status_code == 403
    assert admin.post("/providers", data={**form, "csrf_token": "wrong"}).status_code == 403
    assert admin.post("/providers", data=form, headers={"X-CSRF-Token": "x"}).status_code == 403
    assert admin.post("/logout").status_code == 403
    listed = httpx.get(system.url("config") + "/api/v1/providers", headers=system.admin).json()
    assert name not in {p["name"] for p in listed["data"]}  # nothing was created
    ok = admin.post("/providers", data=form, headers={"X-CSRF-Token": page_csrf(admin)})
    assert ok.status_code == 200 and "created" in ok.text
    listed = httpx.get(system.url("config") + "/api/v1/providers", headers=system.admin).json()
    assert name in {p["name"] for p in listed["data"]}


def test_markup_from_the_api_renders_as_text(system: Any, admin: httpx.Client) -> None:
    evil = "<script>alert(1)</script>"
    name = f"xss-{uuid.uuid4().hex[:8]}"
    csrf = {"X-CSRF-Token": page_csrf(admin), "HX-Request": "true"}
    # stored markup: a base URL path holding a script tag
    stored = f"http://127.0.0.1:9/{evil}/v1"
    made = admin.post(
        "/providers",
        headers=csrf,
        data={"name": name, "kind": "openai_compatible", "base_url": stored},
    )
    assert made.status_code == 200, made.text
    # first on page 1 however many providers other tests of the session have made
    r = httpx.patch(system.url("config") + f"/api/v1/providers/{name}",
                    json={"priority": -1_000_000}, headers=system.admin)  # fmt: skip
    assert r.status_code == 200, r.text
    page = admin.get("/providers").text
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # echoed markup: the API's error message quoting what was typed
    refused = admin.post(
        "/providers",
        headers=csrf,
        data={"name": name + "b", "kind": "openai_compatible", "base_url": evil},
    )
    assert refused.status_code == 422
    assert evil not in refused.text and "&lt;script&gt;" in refused.text


def test_a_typed_provider_key_never_comes_back(system: Any, admin: httpx.Client) -> None:
    secret = "sk-console-" + uuid.uuid4().hex
    name = f"keyed-{uuid.uuid4().hex[:8]}"
    resp = admin.post(
        "/providers",
        headers={"X-CSRF-Token": page_csrf(admin)},
        data={
            "name": name,
            "kind": "openai_compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": secret,
        },
    )
    assert resp.status_code == 200 and secret not in resp.text
    pages = [admin.get("/providers").text]
    total = httpx.get(system.url("config") + "/api/v1/providers", headers=system.admin).json()
    pages += [
        admin.get(f"/providers/table?page={n}").text for n in range(1, total["total"] // 10 + 2)
    ]
    assert all(secret not in p for p in pages)
    assert any(name in p for p in pages)
    assert secret not in system.log()


def test_every_state_changing_route_refuses_a_request_without_the_csrf_token(
    admin: httpx.Client,
) -> None:
    from fastapi.routing import APIRoute

    from turnout_console.api import (
        admin_users,
        auth,
        health,
        lab,
        model_actions,
        models,
        my_keys,
        my_provider_keys,
        provider_actions,
        providers,
        routes,
        rules,
        tiers,
        user_settings,
        users,
    )

    modules = (
        admin_users, auth, health, lab, model_actions, models, my_keys, my_provider_keys,
        provider_actions, providers, routes, rules, tiers, user_settings, users,
    )  # fmt: skip
    found = [r for m in modules for r in m.router.routes if isinstance(r, APIRoute)]
    posts = [r.path for r in found if "POST" in r.methods and r.path != "/login"]
    assert {"/providers", "/models", "/users", "/routes/{purpose}", "/logout", "/lab/run"} <= set(
        posts
    )
    for path in posts:
        url = path.replace("{purpose}", "chat").replace("{ref}", "x").replace("{model_id}", "x")
        url = (
            url.replace("{user_id}", "u")
            .replace("{key_id}", "k")
            .replace("{provider_id}", "p")
            .replace("{provider}", "p")
        )
        resp = admin.post(
            url,
            data={
                "name": "x",
                "model": "x",
                "amount": "1",
                "prompt": "x",
                "status": "up",
                "reason": "x",
            },
        )
        assert resp.status_code == 403, (path, resp.status_code, resp.text[:200])
        assert "CSRF" in resp.text


def test_admin_pages_render_for_a_signed_in_admin(admin: httpx.Client) -> None:
    pages = (
        ("/models", "Models"),
        ("/routes", "Routes"),
        ("/users", "Users"),
        ("/usage?from=&to=&user_id=", "Usage and spend"),
        ("/audit", "Audit log"),
        ("/health", "Health"),
        ("/lab", "Testing lab"),
        ("/rules", "Routing rules"),
        ("/tiers", "Tiers"),
        ("/catalog", "Model catalog"),
    )
    for path, heading in pages:
        page = admin.get(path)
        assert page.status_code == 200, path
        assert f"<h1>{heading}</h1>" in page.text
    health = admin.get("/health").text
    assert "badge badge-" in health  # the providers the suite made, each with a status badge
    missing = admin.get("/users/no-such-user")
    assert missing.status_code == 200  # the API's 404 is shown on the page
    assert '<p class="error" role="alert">' in missing.text and "no-such-user" in missing.text
    assert admin.get("/users/..%2f..").status_code in (404, 422)


def test_a_bad_parameter_is_an_html_page_not_json(admin: httpx.Client) -> None:
    bad = admin.get("/usage?from=yesterday")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")
    assert "from: a day as YYYY-MM-DD" in bad.text
    assert admin.get("/models?sort=drop").status_code == 422


def test_the_audit_log_shows_a_change_made_in_the_console(admin: httpx.Client) -> None:
    name = f"audited-{uuid.uuid4().hex[:8]}"
    made = admin.post(
        "/providers",
        headers={"X-CSRF-Token": page_csrf(admin)},
        data={"name": name, "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
    )
    assert made.status_code == 200
    page = admin.get("/audit", params={"entity": "provider", "action": "create"}).text
    assert name in page and "<details>" in page
    today = datetime.now(UTC).date().isoformat()
    same_day = admin.get("/audit", params={"entity": "provider", "from": today, "to": today})
    assert name in same_day.text
    long_ago = admin.get("/audit", params={"entity": "provider", "to": "2000-01-01"})
    assert long_ago.status_code == 200 and name not in long_ago.text
    assert admin.get("/audit", params={"from": "yesterday"}).status_code == 422


def test_the_lab_offers_the_templates_and_streams_the_routers_refusal(
    admin: httpx.Client,
) -> None:
    lab = admin.get("/lab").text
    for name in ("Explain Quantum Physics", "Code a Function", "Role-Playing"):
        assert name in lab
    assert lab.count('<option value="') >= 10 + 1  # the templates and "auto"
    csrf = _csrf(lab)
    no_key = admin.post("/lab/run", headers={"X-CSRF-Token": csrf}, data={"prompt": "hi"})
    assert no_key.status_code == 422 and "virtual keys only" in no_key.text
    typed = "tk-not-a-virtual-key-" + uuid.uuid4().hex
    bad = admin.post(
        "/lab/run", headers={"X-CSRF-Token": csrf}, data={"prompt": "hi", "key": typed}
    )
    assert bad.status_code == 200 and bad.headers["content-type"].startswith("text/event-stream")
    assert bad.text.startswith("event: error") and "HTTP 401" in bad.text
    assert typed not in bad.text
    hot = admin.post(
        "/lab/run",
        headers={"X-CSRF-Token": csrf},
        data={"prompt": "hi", "key": typed, "temperature": "9"},
    )
    assert hot.status_code == 422 and "temperature" in hot.text
