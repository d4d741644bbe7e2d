"""Which local process holds a TCP port (Linux ``/proc``), for a clear 'port taken' error."""

from __future__ import annotations

import os
from pathlib import Path

from turnout_common.devinfra import port_open


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def holder(port: int) -> str:
    """``pid 1234 (python -m turnout serve router)``, or a fallback when it cannot be told."""
    inodes = _listening_inodes(port)
    if inodes:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            fd_dir = Path("/proc", pid, "fd")
            try:
                links = {os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)}
            except OSError:
                continue
            if any(f"socket:[{i}]" in links for i in inodes):
                try:
                    cmd = Path("/proc", pid, "cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    cmd = b"?"
                return f"pid {pid} ({cmd.decode(errors='replace').strip()[:120]})"
    return "a process this user cannot see"


def taken(ports: dict[str, int], host: str = "127.0.0.1") -> list[str]:
    """One line per port already in use: what it is for and who holds it."""
    return [
        f"port {port} ({what}) is already in use by {holder(port)}"
        for what, port in ports.items()
        if port_open(host, port)
    ]
