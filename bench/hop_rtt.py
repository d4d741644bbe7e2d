"""Round trip of a 1-byte TCP ping-pong between a process on core 0 and one on core 1, after
idle gaps of several lengths: what one cross-core hop costs on this machine, warm and after
idle (bench/RESULTS.md, pass 3).

    python bench/hop_rtt.py [pings per gap, default 200]
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time

GAPS_MS = (0.0, 0.2, 1.0, 5.0, 20.0, 50.0)


def _echo(listener: socket.socket) -> None:
    os.sched_setaffinity(0, {1})
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while byte := conn.recv(1):
        conn.sendall(byte)


def _ping(port: int, pings: int) -> None:
    os.sched_setaffinity(0, {0})
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for gap_ms in GAPS_MS:
        rtts = []
        for _ in range(pings):
            if gap_ms:
                time.sleep(gap_ms / 1000)
            t = time.perf_counter_ns()
            conn.sendall(b"x")
            conn.recv(1)
            rtts.append((time.perf_counter_ns() - t) / 1000)
        rtts.sort()
        p90 = rtts[int(len(rtts) * 0.9)]
        print(f"gap {gap_ms:4g} ms: p50 {statistics.median(rtts):7.1f} µs  p90 {p90:7.1f} µs")
    conn.close()


def main() -> None:
    pings = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        _echo(listener)
        os._exit(0)
    listener.close()
    try:
        _ping(port, pings)
    finally:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
