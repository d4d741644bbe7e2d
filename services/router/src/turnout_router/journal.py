"""The in-flight journal: a usage record even for requests a crashed router was serving.

Every request that reaches the upstream is appended to ``<spool>/inflight-<pid>.log`` when it
starts (its would-be usage record: caller, model, provider, the input-token estimate,
priced) and again when it ends. Writes are unbuffered ``write(2)`` calls, no fsync: they
survive the process being killed (the kernel keeps the page), not the machine losing power.
At start a router replays the journals of routers that are no longer running: each request
started there and never ended is emitted with ``outcome: router_crash``, ``estimated: true``
and the input tokens it was estimated at (the output is unknown: 0), so the upstream's bill
for it is never silently lost. The journal is rotated past ``rotate_bytes``: the requests in
flight are carried into the new file.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson

from turnout_router.record import UsageRecord

log = logging.getLogger(__name__)

START, END = b"S", b"E"
_EPOCH = datetime.fromtimestamp(0, UTC)  # not an event yet: stamped when it is emitted


class InflightJournal:
    def __init__(self, directory: Path, rotate_bytes: int = 64 << 20) -> None:
        self.dir = directory
        self._rotate = rotate_bytes
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._open: dict[str, bytes] = {}  # request id -> its start line

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._path = self.dir / f"inflight-{os.getpid()}.log"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self._size = 0
        for line in self._open.values():
            self._write(line)

    def close(self) -> None:
        """A clean stop: nothing is in flight any more, the journal goes."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        self._size += os.write(self._fd, line)

    def started(self, request_id: str, record: UsageRecord) -> None:
        if self._fd is None:
            return
        line = b"S " + orjson.dumps(record.event("", _EPOCH)) + b"\n"
        self._open[request_id] = line
        self._write(line)

    def ended(self, request_id: str) -> None:
        if self._open.pop(request_id, None) is None or self._fd is None:
            return
        self._write(b"E " + request_id.encode() + b"\n")
        if self._size > self._rotate:
            old = self._path
            os.close(self._fd)
            self.open()  # rewrites the starts still in flight
            if old is not None and old != self._path:
                old.unlink(missing_ok=True)

    def recover(self) -> list[UsageRecord]:
        """Usage records of requests that dead routers started and never ended (their journals
        are removed once read)."""
        out: list[UsageRecord] = []
        for path in sorted(self.dir.glob("inflight-*.log")) if self.dir.exists() else ():
            pid = path.stem.removeprefix("inflight-")
            if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
                continue
            out += _unfinished(path)
            path.unlink(missing_ok=True)
        if out:
            log.warning(
                "recovered %d request(s) a stopped router was serving: emitted as "
                "outcome=router_crash with estimated tokens",
                len(out),
            )
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unfinished(path: Path) -> list[UsageRecord]:
    started: dict[str, UsageRecord] = {}
    with contextlib.suppress(OSError):
        for line in path.read_bytes().splitlines():
            kind, _, rest = line.partition(b" ")
            try:
                if kind == START:
                    rec = UsageRecord.from_event(orjson.loads(rest))
                    started[rec.request_id] = rec
                elif kind == END:
                    started.pop(rest.decode(), None)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError):
                continue  # a line cut by the crash
    return list(started.values())
