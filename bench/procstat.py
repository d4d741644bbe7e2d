#!/usr/bin/env python3
"""CPU ticks and memory of process trees, from /proc (adapted from ../shared/bench/loadgen).

Usage: ``procstat.py PID [PID...]`` prints ``<ticks> <rss_kb> <peak_rss_kb> <nprocs>``:
utime+stime in USER_HZ ticks and VmRSS / VmHWM summed over every process of the trees.
"""

from __future__ import annotations

import os
import sys


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def tree(pids: list[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += children(p)
    return seen


def stat(pids: list[int]) -> tuple[int, int, int, int]:
    ticks = rss = hwm = n = 0
    for p in tree(pids):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
            n += 1
        except OSError:
            pass
    return ticks, rss, hwm, n


if __name__ == "__main__":
    print(*stat([int(p) for p in sys.argv[1:] if p]))
