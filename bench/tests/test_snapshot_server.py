"""The snapshot stand-in serves config in the contract's shapes, behind the admin token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from snapshot_server import UPSTREAM_KEY, build_snapshot, make_app

from turnout_common.crypto import KeyRing, generate_key, hash_virtual_key, new_virtual_key
from turnout_common.events import ConfigEvent
from turnout_common.follow import fetch_snapshot
from turnout_common.testing.servers import LocalServer

UPSTREAMS = {
    "bench-fast": "http://127.0.0.1:1/v1",
    "bench-slow": "http://127.0.0.1:2/v1",
    "bench-stream": "http://127.0.0.1:3/v1",
}


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing([generate_key()])


@pytest.fixture(scope="module")
def vkey() -> str:
    return new_virtual_key()


@pytest.fixture(scope="module")
def server(ring: KeyRing, vkey: str) -> Iterator[LocalServer]:
    with LocalServer(make_app(build_snapshot(UPSTREAMS, ring, vkey), "admin-secret")) as srv:
        yield srv


def by_entity(snapshot: dict[str, object]) -> dict[str, list[ConfigEvent]]:
    out: dict[str, list[ConfigEvent]] = {}
    for item in snapshot["entities"]:  # type: ignore[attr-defined]
        ev = ConfigEvent.model_validate(item)
        out.setdefault(ev.entity, []).append(ev)
    return out


async def test_snapshot_follows_the_contract(server: LocalServer, ring: KeyRing, vkey: str) -> None:
    snap = await fetch_snapshot(server.url, "admin-secret", retries=3)
    ents = by_entity(snap)
    revisions = [item["revision"] for item in snap["entities"]]
    assert revisions == sorted(set(revisions))
    assert snap["revision"] == max(revisions)
    models = {e.data["name"]: e.data for e in ents["model"] if e.data}
    assert set(models) == set(UPSTREAMS)
    providers = {e.entity_id: e.data for e in ents["provider"] if e.data}
    for name, url in UPSTREAMS.items():
        prov = providers[models[name]["provider_id"]]
        assert prov["kind"] == "openai_compatible"
        assert prov["base_url"] == url
        assert UPSTREAM_KEY not in str(prov)  # only the ciphertext travels
        assert ring.decrypt(prov["api_key_encrypted"]) == UPSTREAM_KEY
    (key,) = ents["virtual_key"]
    assert key.data is not None
    assert key.data["key_hash"] == hash_virtual_key(vkey)
    assert vkey not in str(snap)
    (user,) = ents["user"]
    assert user.data is not None
    assert key.data["user_id"] == user.entity_id
    assert {e.entity_id for e in ents["tier"]} == {"free", "starter", "professional", "enterprise"}


async def test_snapshot_refuses_a_wrong_token(server: LocalServer) -> None:
    with pytest.raises(RuntimeError, match="401"):
        await fetch_snapshot(server.url, "not-the-token", retries=1)
