#!/usr/bin/env python3
"""Run a Tansu broker (``turnout_common.devinfra.TansuBroker``) with every Turnout topic.

  broker.py [--port P] [--pidfile F]     prints ``READY host:port`` once topics exist;
                                         SIGTERM / SIGINT stop the broker and exit.
The Tansu process runs in its own session; its pid goes to ``--pidfile`` so the caller can
still kill it if this process dies first.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from turnout_common.broker import ensure_topics, wait_for_broker
from turnout_common.devinfra import TansuBroker
from turnout_common.settings import KafkaSettings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--pidfile", type=Path, default=None)
    ap.add_argument("--log", type=Path, default=None)
    args = ap.parse_args()
    broker = TansuBroker(port=args.port, log_path=args.log)
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        settings = KafkaSettings(bootstrap=broker.bootstrap)
        await wait_for_broker(settings)
        await ensure_topics(settings)
        print(f"READY {broker.bootstrap}", flush=True)
        await stop.wait()

    broker.start()
    try:
        if args.pidfile is not None and broker._proc is not None:  # bench-only peek
            args.pidfile.write_text(str(broker._proc.pid))
        asyncio.run(run())
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
