"""Issue 14 item 1: agents and frameworks work by default against a freshly added model.

Before: ``tools=[...]`` and ``response_format`` were refused (400 ``model_not_capable``)
because capabilities defaulted to false for ``POST /models`` and for discovered models, so
LangChain's ``bind_tools`` / ``with_structured_output`` failed against a new GPT-4o.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AuthenticationError, OpenAI
from pydantic import BaseModel

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for


@pytest.fixture(scope="module")
def fresh(system: Any) -> Iterator[tuple[str, str, str]]:
    """(router /v1 URL, virtual key, model): a model added with no capabilities at all."""
    fake = FakeOpenAI(name="agents")
    fake.behaviour.tool_call = True
    server = LocalServer(fake.app).start()
    tag = uuid.uuid4().hex[:6]
    cfg, h = system.url("config") + "/api/v1", system.admin
    with httpx.Client(headers=h, timeout=10) as c:
        for path, body in (
            ("/providers", {"name": f"agents-{tag}", "kind": "openai_compatible",
                            "base_url": server.url + "/v1"}),
            ("/models", {"provider": f"agents-{tag}", "upstream_model": "house-model",
                         "name": f"house-{tag}"}),
            ("/users", {"id": f"agent-{tag}"}),
        ):  # fmt: skip
            r = c.post(cfg + path, json=body)
            assert r.status_code == 201, r.text
        assert r.json()["id"] == f"agent-{tag}"
        key = c.post(cfg + "/keys", json={"user_id": f"agent-{tag}"}).json()["key"]
    base = system.url("router") + "/v1"
    client = OpenAI(base_url=base, api_key=key)

    def visible() -> bool:  # 401 until the key's config event reaches the router
        try:
            return f"house-{tag}" in {m.id for m in client.models.list()}
        except AuthenticationError:
            return False

    wait_for(visible, timeout=15)
    yield base, key, f"house-{tag}"
    server.stop()


WEATHER: Any = [{"type": "function", "function": {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]  # fmt: skip


def test_openai_sdk_tools_and_json_mode(fresh: tuple[str, str, str]) -> None:
    base, key, model = fresh
    client = OpenAI(base_url=base, api_key=key, max_retries=0)
    msgs: Any = [{"role": "user", "content": "weather in Paris?"}]
    out = client.chat.completions.create(model=model, messages=msgs, tools=WEATHER)
    call = out.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and "city" in call.function.arguments  # type: ignore[union-attr]
    out = client.chat.completions.create(
        model=model, messages=msgs, response_format={"type": "json_object"}
    )
    assert out.choices[0].message.content == '{"answer": "Paris"}'


class Weather(BaseModel):
    city: str
    celsius: int


def test_langchain_bind_tools_and_structured_output(fresh: tuple[str, str, str]) -> None:
    base, key, model = fresh
    llm = ChatOpenAI(base_url=base, api_key=key, model=model, max_retries=0)  # type: ignore[arg-type]

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    msg = llm.bind_tools([get_weather]).invoke("weather in Paris?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    assert msg.tool_calls[0]["args"] == {"city": "Paris"}  # type: ignore[attr-defined]
    # (json_mode sends no schema: the simulator cannot know the fields; see the SDK test)
    for method in ("json_schema", "function_calling"):
        out = llm.with_structured_output(Weather, method=method).invoke("weather in Paris?")  # type: ignore[arg-type]
        assert isinstance(out, Weather | dict), (method, out)


def test_an_explicit_false_still_refuses(system: Any, fresh: tuple[str, str, str]) -> None:
    base, key, model = fresh
    cfg = system.url("config") + "/api/v1/models"
    rows = httpx.get(cfg, params={"search": model}, headers=system.admin).json()["data"]
    mid = next(r["id"] for r in rows if r["name"] == model)
    r = httpx.patch(f"{cfg}/{mid}", json={"capabilities": {"json_mode": False}},
                    headers=system.admin)  # fmt: skip
    assert r.status_code == 200 and r.json()["capabilities"] == {"json_mode": False}
    client = OpenAI(base_url=base, api_key=key, max_retries=0)

    def refused() -> bool:
        r = httpx.post(base + "/chat/completions", headers={"Authorization": f"Bearer {key}"},
                       json={"model": model, "messages": [{"role": "user", "content": "x"}],
                             "response_format": {"type": "json_object"}})  # fmt: skip
        return r.status_code == 400 and r.json()["error"]["code"] == "model_not_capable"

    wait_for(refused, timeout=10)
    # the PATCH merged: tools are still undeclared, so they still pass through
    out = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "x"}], tools=WEATHER
    )
    assert out.choices[0].message.tool_calls


def test_context_overflow_falls_back_only_when_asked(
    system: Any, fresh: tuple[str, str, str]
) -> None:
    """Issue 14 item 2: a named model is never swapped silently for a dearer one."""
    base, key, model = fresh
    provider = "agents-" + model.split("-", 1)[1]
    cfg, h = system.url("config") + "/api/v1/models", system.admin
    small, big = model + "-small", model + "-big"
    for name, window, price, fallbacks in ((big, 100_000, "5", []), (small, 64, "1", [big])):
        r = httpx.post(cfg, headers=h, json={
            "provider": provider, "upstream_model": name, "name": name,
            "context_window": window, "input_price_per_mtok": price,
            "output_price_per_mtok": price, "fallbacks": fallbacks})  # fmt: skip
        assert r.status_code == 201, r.text
    long = {"model": small, "messages": [{"role": "user", "content": "word " * 400}]}
    auth = {"Authorization": f"Bearer {key}"}

    def refused() -> bool:
        r = httpx.post(base + "/chat/completions", json=long, headers=auth)
        return r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"

    wait_for(refused, timeout=10)
    r = httpx.post(base + "/chat/completions", json=long, headers=auth)
    assert "x-turnout-fallback-on-context" in r.json()["error"]["message"]
    r = httpx.post(base + "/chat/completions", json=long,
                   headers={**auth, "x-turnout-fallback-on-context": "true"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-turnout-model"] == big


def test_up_logs_each_request_and_health_change(system: Any, fresh: tuple[str, str, str]) -> None:
    """Issue 14 item 10: `turnout up` shows one line per request and every health change."""
    base, key, model = fresh
    client = OpenAI(base_url=base, api_key=key, max_retries=0)
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    line = re.compile(rf"POST /v1/chat/completions {model} → agents-\S+ 200 \d+\+\d+ tokens")
    wait_for(lambda: line.search(system.log()) is not None, timeout=10)
    provider = "agents-" + model.split("-", 1)[1]
    wait_for(lambda: f"provider '{provider}': healthy, circuit closed" in system.log(), timeout=30)
