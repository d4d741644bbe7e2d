"""Virtual-key authentication: the per-index memo never outlives a config change."""

from __future__ import annotations

from typing import Any

import pytest

from turnout_common.crypto import hash_virtual_key
from turnout_common.errors import AuthenticationFailed
from turnout_router import auth
from turnout_router.state import build_index

TOKEN = "tk-" + "a" * 43


def _index(revoked: bool = False) -> Any:
    key = {
        "id": "k1",
        "user_id": "u1",
        "key_hash": hash_virtual_key(TOKEN),
        "revoked": revoked,
    }
    return build_index(
        {
            ("virtual_key", "k1"): (1, key),
            ("user", "u1"): (1, {"id": "u1", "tier": "starter"}),
        }
    )


def _counting_hash(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def counted(token: str) -> str:
        calls.append(token)
        return hash_virtual_key(token)

    monkeypatch.setattr(auth, "hash_virtual_key", counted)
    return calls


def test_a_known_token_is_hashed_once_per_index(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_hash(monkeypatch)
    index = _index()
    first = auth.authenticate(index, f"Bearer {TOKEN}", 0.0)
    again = auth.authenticate(index, f"bearer {TOKEN}", 0.0)
    assert again is first
    assert first.key.id == "k1"
    assert first.tier == "starter"
    assert calls == [TOKEN]


def test_a_new_index_forgets_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    auth.authenticate(_index(), f"Bearer {TOKEN}", 0.0)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        auth.authenticate(_index(revoked=True), f"Bearer {TOKEN}", 0.0)


def test_unknown_tokens_are_not_remembered() -> None:
    index = _index()
    for i in range(3):
        with pytest.raises(AuthenticationFailed, match="invalid API key"):
            auth.authenticate(index, f"Bearer tk-unknown-{i}", 0.0)
    assert index.by_token == {}


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "TOKEN_MEMO_MAX", 1)
    index = _index()
    index.by_token["tk-some-other-valid-token"] = object()
    auth.authenticate(index, f"Bearer {TOKEN}", 0.0)
    assert list(index.by_token) == [TOKEN]
