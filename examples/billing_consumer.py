"""Example billing consumer of ``turnout.billing.v1``: total cost per subject, de-duplicated.

Each message is a CloudEvents 1.0 JSON envelope (structured mode). Delivery is
at-least-once, so the same event can arrive twice: de-duplicate on the CloudEvents ``id``
(Turnout's request id). Offsets are committed only after a batch is applied.

    python examples/billing_consumer.py --bootstrap 127.0.0.1:9092
    python examples/billing_consumer.py --bootstrap ... --idle-exit 5   # stop when drained

Needs only ``aiokafka``. On exit it prints the totals as JSON. This example keeps its state
in memory; a real consumer stores the seen ids and the totals in one database transaction
(see docs/billing-consumer.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from aiokafka import AIOKafkaConsumer

log = logging.getLogger("billing_consumer")
EVENT_TYPE = "io.turnout.usage.billed.v1"


@dataclass
class SubjectTotal:
    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    events: int = 0


@dataclass
class Ledger:
    """Totals per subject; ``apply`` ignores an event whose ``id`` it has already seen."""

    seen: set[str] = field(default_factory=set)
    subjects: dict[str, SubjectTotal] = field(default_factory=dict)
    duplicates: int = 0
    rejected: int = 0

    def apply(self, raw: bytes | None) -> bool:
        """Apply one message; False if it was a duplicate or not a valid billing event."""
        try:
            event = parse(raw)
        except ValueError as exc:
            self.rejected += 1
            log.warning("skipping a message that is not a billing event: %s", exc)
            return False
        if event["id"] in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(event["id"])
        data = event["data"]
        total = self.subjects.setdefault(event["subject"], SubjectTotal())
        total.cost_usd += data["cost_usd"]
        total.input_tokens += int(data.get("input_tokens", 0))
        total.output_tokens += int(data.get("output_tokens", 0))
        total.events += 1
        return True

    def summary(self) -> dict[str, Any]:
        return {
            "events": sum(t.events for t in self.subjects.values()),
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "subjects": {
                name: {
                    "cost_usd": str(t.cost_usd),
                    "input_tokens": t.input_tokens,
                    "output_tokens": t.output_tokens,
                    "events": t.events,
                }
                for name, t in sorted(self.subjects.items())
            },
        }


def parse(raw: bytes | None) -> dict[str, Any]:
    """Decode and check one CloudEvent; money is parsed as Decimal, never float."""
    if raw is None:
        raise ValueError("empty message")
    try:
        event = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(event, dict) or event.get("specversion") != "1.0":
        raise ValueError("not a CloudEvents 1.0 envelope")
    if event.get("type") != EVENT_TYPE:
        raise ValueError(f"unexpected type {event.get('type')!r}")
    for name in ("id", "subject"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise ValueError(f"missing {name}")
    data = event.get("data")
    if not isinstance(data, dict):
        raise ValueError("missing data")
    try:
        data["cost_usd"] = Decimal(str(data["cost_usd"]))
    except (KeyError, InvalidOperation) as exc:
        raise ValueError("data.cost_usd is not a decimal") from exc
    return event


async def consume(args: argparse.Namespace, ledger: Ledger, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        fetch_max_wait_ms=args.fetch_max_wait_ms,
    )
    await consumer.start()
    loop = asyncio.get_running_loop()
    last_message = loop.time()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            records = [r for batch in batches.values() for r in batch]
            for record in records:
                ledger.apply(record.value)
            if records:
                await consumer.commit()  # only after the batch is applied
                last_message = loop.time()
            elif args.idle_exit and loop.time() - last_message > args.idle_exit:
                break
    finally:
        await consumer.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Total Turnout billing events per subject.")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="turnout.billing.v1")
    parser.add_argument("--group", default="billing-example", help="consumer group id")
    parser.add_argument(
        "--idle-exit", type=float, default=0.0, help="exit after this many idle seconds (0: never)"
    )
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=3_000)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=500)
    return parser.parse_args(argv)


async def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    ledger, stop = Ledger(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await consume(args, ledger, stop)
    return ledger.summary()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    summary = asyncio.run(run())
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
