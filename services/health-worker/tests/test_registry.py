"""Config state (revisions win, tombstones remove, admin tokens follow revocation), settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from turnout_common.events import ConfigEvent
from turnout_health.registry import ConfigRegistry
from turnout_health.settings import HealthSettings


def ev(rev: int, entity: str, eid: str, data: dict | None) -> ConfigEvent:
    op = "upsert" if data is not None else "delete"
    return ConfigEvent(revision=rev, entity=entity, entity_id=eid, op=op, data=data)  # type: ignore[arg-type]


def test_provider_revisions() -> None:
    reg = ConfigRegistry()
    assert reg.apply(ev(2, "provider", "p", {"name": "new", "kind": "ollama", "is_system": True}))
    assert not reg.apply(ev(1, "provider", "p", {"name": "old"}))  # stale: ignored
    assert reg.providers["p"].name == "new" and reg.providers["p"].is_system
    assert not reg.apply(ev(5, "model", "m", {}))
    assert reg.apply(ev(3, "provider", "p", None))
    assert "p" not in reg.providers


def test_admin_tokens() -> None:
    reg = ConfigRegistry()
    reg.apply(ev(1, "admin_token", "t", {"token_hash": "h1", "revoked": False}))
    assert reg.admin_token_hashes == {"h1"}
    reg.apply(ev(2, "admin_token", "t", {"token_hash": "h1", "revoked": True}))
    assert reg.admin_token_hashes == set()


def test_settings_refuse_a_circuit_that_can_never_open() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        HealthSettings(failure_threshold=1)
    with pytest.raises(ValidationError, match="FAILURE_WINDOW_S"):
        HealthSettings(probe_interval_s=30, failure_threshold=3, failure_window_s=30)
    assert HealthSettings().tick_s == 0.5
