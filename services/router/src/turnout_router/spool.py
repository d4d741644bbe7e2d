"""The usage spool: append-only, fsync'd JSONL files of serialised usage records that the
broker did not acknowledge; one file per failed batch, replayed oldest first
(:class:`turnout_router.usage.UsageEmitter`)."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import orjson

Record = tuple[bytes, bytes, dict[str, str] | None]
"""(key, value, headers) of one serialised usage event; the headers are its W3C trace context
(``traceparent``…), present only when the router traces (:mod:`turnout_router.tracing`)."""


class Spool:
    """Append-only, fsync'd JSONL files; one file per failed batch, replayed oldest first."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._seq = itertools.count()

    def files(self) -> list[Path]:
        if not self.dir.exists():
            return []
        return sorted(self.dir.glob("*.jsonl"))

    def write(self, records: list[Record]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.jsonl"
        tmp = path.with_suffix(".part")
        lines = b"".join(
            b'{"key":'
            + orjson.dumps(k.decode())
            + (b',"headers":' + orjson.dumps(h) if h else b"")
            + b',"value":'
            + v
            + b"}\n"
            for k, v, h in records
        )
        with open(tmp, "wb") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(path)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return path

    @staticmethod
    def read(path: Path) -> list[Record]:
        out: list[Record] = []
        for line in path.read_bytes().splitlines():
            if line.strip():
                item = orjson.loads(line)
                out.append((item["key"].encode(), orjson.dumps(item["value"]), item.get("headers")))
        return out
