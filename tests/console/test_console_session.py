"""Session expiry and the Secure cookie flag: the console app in this process (its session
clock in the test's hand), talking to the real config-api and router of the running system."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from turnout_console.app import create_app
from turnout_console.sessions import SessionStore
from turnout_console.settings import ConsoleSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _sign_in(client: TestClient, token: str) -> Any:
    login = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf
    return client.post(
        "/login", data={"token": token, "csrf_token": csrf.group(1)}, follow_redirects=False
    )


@pytest.fixture
def console(system: Any) -> tuple[Any, Clock]:
    clock = Clock()
    settings = ConsoleSettings(
        config_url=system.url("config"),
        router_url=system.url("router"),
        metering_url=system.url("metering"),
        health_url=system.url("health"),
        console_session_ttl_s=600,
    )
    return create_app(settings, store=SessionStore(600, clock)), clock


def test_a_session_expires_after_its_ttl(system: Any, console: tuple[Any, Clock]) -> None:
    app, clock = console
    with TestClient(app) as client:
        assert _sign_in(client, system.info["admin_token"]).status_code == 303
        assert client.get("/providers", follow_redirects=False).status_code == 200
        clock.now += 599
        assert client.get("/providers", follow_redirects=False).status_code == 200
        clock.now += 2
        gone = client.get("/providers", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"] == "/login?expired=1"
        htmx = client.get("/providers/table", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login?expired=1"
        assert "Your session has ended" in client.get("/login?expired=1").text


def test_the_cookie_is_secure_over_https(system: Any, console: tuple[Any, Clock]) -> None:
    app, _ = console
    with TestClient(app, base_url="https://console.test") as client:
        resp = _sign_in(client, system.info["admin_token"])
        assert resp.status_code == 303
        assert "Secure" in resp.headers["set-cookie"]
    with TestClient(app) as plain:
        assert "Secure" not in _sign_in(plain, system.info["admin_token"]).headers["set-cookie"]
