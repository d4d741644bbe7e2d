"""Kafka topic names and their partitioning. Versioned: a breaking change gets a new topic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    partitions: int
    compacted: bool
    description: str


CONFIG = Topic(
    "turnout.config.v1",
    1,
    True,
    "config-api -> all: full entity snapshots or tombstones with a monotonic config revision",
)
HEALTH = Topic(
    "turnout.health.v1",
    1,
    True,
    "health-worker -> router, config-api: provider/deployment state changes",
)
USAGE = Topic(
    "turnout.usage.v1",
    4,
    False,
    "router -> metering, health-worker, billing: one record per request attempt chain",
)
CREDIT = Topic(
    "turnout.credit.v1",
    1,
    True,
    "metering -> router: budget / balance state per user and key",
)
BILLING = Topic(
    "turnout.billing.v1",
    4,
    False,
    "metering -> external billing: priced, de-duplicated usage as CloudEvents 1.0 JSON",
)

ALERTS = Topic(
    "turnout.alerts.v1",
    1,
    False,
    "metering, health-worker -> webhook delivery (metering): budget, credit, provider and"
    " lag alerts, one per crossing",
)

ALL_TOPICS: tuple[Topic, ...] = (CONFIG, HEALTH, USAGE, CREDIT, BILLING, ALERTS)
