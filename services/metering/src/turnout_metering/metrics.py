"""Prometheus metrics of the metering service (default registry, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "turnout_metering_usage_records_total",
    "Usage records consumed, by result (inserted, duplicate, invalid)",
    ["result"],
)
BATCH_SECONDS = Histogram(
    "turnout_metering_batch_seconds",
    "Time to write one batch (one DB transaction)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INGEST_RATE = Gauge("turnout_metering_ingest_records_per_second", "Records/s over the last 10 s")
LAG = Gauge("turnout_metering_consumer_lag", "Usage records not yet consumed (all partitions)")
SPEND = Counter("turnout_metering_spend_usd_total", "USD metered (new records only)")
TOKENS = Counter("turnout_metering_tokens_total", "Tokens metered (new records only)", ["kind"])
CREDIT_EVENTS = Counter("turnout_metering_credit_events_total", "Credit events enqueued")
BLOCKED_EVENTS = Counter("turnout_metering_blocked_events_total", "Credit events with blocked")
BILLING_EVENTS = Counter("turnout_metering_billing_events_total", "Billing events enqueued")
ROLLOVERS = Counter("turnout_metering_rollovers_total", "Monthly period rollovers done")
