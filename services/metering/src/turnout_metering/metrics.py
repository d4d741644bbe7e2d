"""Prometheus metrics of the metering service (default registry, served at ``/metrics``).

Besides its own ``turnout_metering_*`` series it exports the dashboard's shared ones:
``turnout_cost_usd_total`` (priced, de-duplicated usage), ``turnout_consumer_lag``,
``turnout_outbox_pending`` and ``turnout_http_*`` (the last three from
:mod:`turnout_common.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from prometheus_client import Counter, Gauge, Histogram

from turnout_common.events import UsageEvent
from turnout_common.metrics import CONSUMER_LAG

SERVICE = "metering"

RECORDS = Counter(
    "turnout_metering_usage_records_total",
    "Usage records consumed, by result (inserted, duplicate, invalid)",
    ["result"],
)
DEAD_LETTERS = Counter(
    "turnout_metering_dead_letters_total",
    "Usage records set aside (unparseable, or refused by the database on their own)",
    ["reason"],
)
BATCH_SECONDS = Histogram(
    "turnout_metering_batch_seconds",
    "Time to write one batch (one DB transaction)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INGEST_RATE = Gauge("turnout_metering_ingest_records_per_second", "Records/s over the last 10 s")
SPEND = Counter("turnout_metering_spend_usd_total", "USD metered (new records only)")
COST = Counter(
    "turnout_cost_usd",
    "USD metered (new records only), by the model and provider that served",
    ["gen_ai_request_model", "gen_ai_provider_name"],
)
TOKENS = Counter("turnout_metering_tokens_total", "Tokens metered (new records only)", ["kind"])
CREDIT_EVENTS = Counter("turnout_metering_credit_events_total", "Credit events enqueued")
BLOCKED_EVENTS = Counter("turnout_metering_blocked_events_total", "Credit events with blocked")
BILLING_EVENTS = Counter("turnout_metering_billing_events_total", "Billing events enqueued")
ROLLOVERS = Counter("turnout_metering_rollovers_total", "Monthly period rollovers done")


def observe_cost(events: Iterable[UsageEvent]) -> None:
    """Count newly metered records into ``turnout_cost_usd_total`` and the total spend."""
    by_label: dict[tuple[str, str], Decimal] = {}
    for e in events:
        label = (e.model or "", e.provider or "")
        by_label[label] = by_label.get(label, Decimal(0)) + e.cost_usd
    for (model, provider), usd in by_label.items():
        COST.labels(model, provider).inc(float(usd))
    SPEND.inc(float(sum(by_label.values(), Decimal(0))))


def observe_lag(topic: str, partition: int, lag: int) -> None:
    CONSUMER_LAG.labels(SERVICE, topic, str(partition)).set(lag)


ALERTS = Counter(
    "turnout_metering_alerts_total", "Alerts put on turnout.alerts.v1 by metering", ["source"]
)
ALERT_DELIVERIES = Counter(
    "turnout_metering_alert_deliveries_total",
    "Webhook delivery attempts of alerts, by result (delivered, retry, dead)",
    ["result"],
)
USAGE_PARTITIONS = Gauge("turnout_metering_usage_partitions", "usage_log partitions")
USAGE_RAW_SINCE = Gauge(
    "turnout_metering_usage_raw_since_seconds",
    "Start of the oldest usage_log partition (Unix time): raw rows go back this far",
)
BUDGET_SUBJECTS = Gauge(
    "turnout_metering_budget_subjects",
    "Users and keys of the current month past a budget threshold (level 50, 80, 100: the"
    " highest reached) or with no prepaid credit left (level exhausted)",
    ["subject_type", "level"],
)
