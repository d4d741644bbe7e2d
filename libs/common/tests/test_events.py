from decimal import Decimal

from turnout_common.events import BillingEvent, ConfigEvent, CreditEvent, UsageEvent
from turnout_common.topics import ALL_TOPICS


def test_usage_event_roundtrip_keeps_money_exact() -> None:
    ev = UsageEvent(
        request_id="r1", input_tokens=10, output_tokens=5, cost_usd=Decimal("0.000001234567")
    )
    raw = ev.to_bytes()
    assert b'"0.000001234567"' in raw
    back = UsageEvent.from_bytes(raw)
    assert back == ev
    assert back.total_tokens == 15
    assert back.schema_version == 1


def test_config_event_key_and_tombstone() -> None:
    ev = ConfigEvent(revision=7, entity="provider", entity_id="p1", op="delete")
    assert ev.key == "provider:p1" and ev.data is None


def test_credit_and_billing_events() -> None:
    c = CreditEvent(subject_type="user", subject_id="alice", period="2026-11", blocked=True)
    assert c.key == "user:alice"
    b = BillingEvent(id="r1", time=c.occurred_at, subject="alice", data={"cost_usd": "0.1"})
    assert b.specversion == "1.0" and b"io.turnout.usage.billed.v1" in b.to_bytes()


def test_topics_are_versioned_and_unique() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(set(names)) == 6
    assert all(n.startswith("turnout.") and n.endswith(".v1") for n in names)
