"""Schemathesis against config-api's own OpenAPI spec: bad input gets a 4xx, never a 5xx.

The schema is the in-process app's ``/api/v1/openapi.json``. Every operation gets a bounded,
deterministic (``derandomize``) number of schemathesis-generated cases, valid (positive) and
invalid (negative), sent as admin to the session's app (real Postgres, real broker); every
response is checked with ``not_a_server_error`` and ``response_schema_conformance``. A second
pass pins the path parameters to entities that exist (provider, model, user, key, BYOK key,
routing rule, admin token), so generated bodies reach the update/delete/probe code instead of
stopping at a 404.

The app's database pool lives on the session event loop, so Hypothesis runs in a worker thread
and hands each request back to that loop. (Schemathesis' own ASGI transport runs the app's
lifespan, i.e. a new pool and outbox relay, once per request.)

``TURNOUT_SCHEMATHESIS_EXAMPLES`` raises the per-operation count for a deeper run by hand.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from turnout_common.devinfra import free_port

# schemathesis' generators call the `random` module (seeded by Hypothesis, so still
# deterministic); Hypothesis flags that with a deprecation warning that `error` would raise
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

EXAMPLES = int(os.environ.get("TURNOUT_SCHEMATHESIS_EXAMPLES", "5"))  # per operation, mode, pass
CHECKS = [not_a_server_error, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

Seen = list[tuple[str, str, int]]
USER_PATHS = (
    "/api/v1/catalog",
    "/api/v1/byok/",
    "/api/v1/users/{user_id}/provider-keys",
    "/api/v1/keys",
    "/api/v1/lab/",
)
"""Routes an end user's virtual key may call (issue 16): fuzzed a second time as that user."""


def _send(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, kwargs: dict[str, Any]
) -> httpx.Response:
    """Send one serialised case (``requests``-style kwargs) through the app on its own loop."""
    kwargs = dict(kwargs)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs.pop("json")
    data = kwargs.pop("data", None)
    if data is not None:
        body["content"] = data.encode() if isinstance(data, str) else data
    request = client.request(
        kwargs.pop("method"),
        kwargs.pop("url"),
        headers=kwargs.pop("headers", None),
        params=kwargs.pop("params", None),
        cookies=kwargs.pop("cookies", None),
        **body,
    )
    return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=60)


def _upstream_unreachable(operation: Any, response: httpx.Response) -> bool:
    """``discover`` answers 502 ``upstream_error`` when the provider cannot be reached (here: the
    seeded provider's closed port). That is the upstream's failure, not a reaction to bad input,
    and test_providers_live pins it; every other 5xx fails the run."""
    if response.status_code != 502 or not operation.path.endswith("/discover"):
        return False
    return bool(response.json().get("error", {}).get("type") == "upstream_error")


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    path_parameters: dict[str, str],
    send: Any,
    admin: dict[str, str],
    seen: Seen,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time, failing or not
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(case: Any) -> None:
        response = send(case.as_transport_kwargs(headers=admin))
        seen.append((operation.label, mode.value, response.status_code))
        if _upstream_unreachable(operation, response):
            case.validate_response(response, checks=[response_schema_conformance], headers=admin)
        else:
            case.validate_response(response, checks=CHECKS, headers=admin)

    run()


async def _seed(client: httpx.AsyncClient, admin: dict[str, str], uid: Any) -> dict[str, str]:
    """Entities for the pinned pass; the provider points at a closed local port (no egress)."""

    async def post(path: str, body: dict[str, Any], method: str = "POST") -> dict[str, Any]:
        r = await client.request(method, f"/api/v1{path}", headers=admin, json=body)
        assert r.status_code in (200, 201), (path, r.text)
        return dict(r.json())

    dead = f"http://127.0.0.1:{free_port()}/v1"
    provider = await post(
        "/providers",
        {"name": uid("st-prov"), "kind": "openai_compatible", "base_url": dead, "api_key": "sk-x"},
    )
    model = await post(
        "/models", {"provider": provider["id"], "upstream_model": uid("st-up"), "name": uid("st-m")}
    )
    user = await post("/users", {"id": uid("st-user")})
    key = await post("/keys", {"user_id": user["id"]})
    await post(f"/users/{user['id']}/provider-keys/{provider['name']}", {"api_key": "sk-b"}, "PUT")
    opened = await post(
        "/providers",
        {"name": uid("st-open"), "kind": "openai", "base_url": dead, "byok_enabled": True},
    )
    rule_body = {"name": uid("st-rule"), "model": model["name"], "targets": [model["name"]]}
    rule = await post("/routing-rules", rule_body)
    token = await post("/admin-tokens", {"name": uid("st-admin")})
    return {
        "/providers/{ref}": provider["id"],
        "/routing-rules/{ref}": rule["id"],
        "model_id": model["id"],
        "user_id": user["id"],
        "key_id": key["id"],
        "provider": provider["name"],
        "token_id": token["id"],
        "user_key": key["key"],
        "open_provider": opened["name"],
    }


def _pinned(operation: Any, seeded: dict[str, str]) -> dict[str, str]:
    names = [p.name for p in operation.path_parameters]
    pinned = {name: seeded[name] for name in names if name in seeded}
    for prefix in ("/providers/{ref}", "/routing-rules/{ref}"):
        if "ref" in names and prefix in operation.path:
            pinned["ref"] = seeded[prefix]
    return pinned


def _pinned_order(operation: Any) -> int:
    """Probes before the provider can be re-pointed by a PATCH; deletions last."""
    if operation.path.endswith(("/test", "/discover")):
        return 0
    return 2 if operation.method.upper() == "DELETE" else 1


@pytest.mark.timeout(300)
async def test_no_operation_answers_5xx(client, admin, uid) -> None:
    spec = (await client.get("/api/v1/openapi.json", headers=admin)).json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    seeded = await _seed(client, admin, uid)
    pinned = sorted(
        ((op, _pinned(op, seeded)) for op in operations if op.path_parameters),
        key=lambda item: _pinned_order(item[0]),
    )
    loop = asyncio.get_running_loop()
    plan = [(op, {}) for op in operations] + [(op, params) for op, params in pinned if params]
    failures: list[str] = []
    seen: Seen = []

    def send(kwargs: dict[str, Any]) -> httpx.Response:
        return _send(loop, client, kwargs)

    def fuzz_all() -> None:
        for operation, params in plan:
            for mode in MODES:
                try:
                    _fuzz(operation, mode, params, send, admin, seen)
                except Unsatisfiable:
                    # nothing to make invalid (e.g. string path parameters only): no case to send
                    assert mode is GenerationMode.NEGATIVE, operation.label
                except Exception as exc:  # every operation's failure, reported together
                    failures.append(f"{operation.label} {params} [{mode.value}]: {exc}")

    # the end user's routes again, authorised by the user's own key (their own id pinned)
    user = {"Authorization": f"Bearer {seeded['user_key']}"}
    mine = {"user_id": seeded["user_id"], "provider": seeded["open_provider"]}

    as_user: list[str] = []

    def fuzz_as_user() -> None:
        for operation in operations:
            if not operation.path.startswith(USER_PATHS):
                continue
            as_user.append(operation.label)
            params = {p.name: mine[p.name] for p in operation.path_parameters if p.name in mine}
            for mode in MODES:
                try:
                    _fuzz(operation, mode, params, send, user, seen)
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE, operation.label
                except Exception as exc:
                    failures.append(f"as user: {operation.label} {params} [{mode.value}]: {exc}")

    await asyncio.to_thread(fuzz_all)
    await asyncio.to_thread(fuzz_as_user)
    assert not failures, "\n\n".join(failures)
    assert len(as_user) >= 12, as_user  # catalog, byok providers, provider keys, keys, lab
    statuses = Counter(status for *_, status in seen)
    assert {label for label, *_ in seen} == {op.label for op in operations}
    # the run reached the handlers, not only validation: successes and refusals both seen
    assert sum(n for s, n in statuses.items() if s < 300) >= len(operations), statuses
    assert statuses[422] > 0 and statuses[404] > 0, statuses
