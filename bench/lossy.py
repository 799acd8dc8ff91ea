"""Benchmark: how exactly the lossy nemesis's loss and slow link happen on this kernel.

Two network namespaces (local backend, root). For each probability, the lossy rules
(nemesis/lossy.py's own scripts) go on n2 for packets from n1, n1 sends datagrams to a
UDP sink on n2, and the share that arrived is printed beside the asked loss, with the
binomial standard deviation; then a TCP transfer through a slow link (tbf) is timed
against the rate asked. Rules are removed after each step and the nodes torn down.

    python bench/lossy.py [--datagrams 5000] [--probabilities 0.1,0.3,0.5,0.9]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness.backends.base import Backend, Node
from harness.backends.local import LocalBackend
from harness.nemesis.lossy import Slow, heal_script, loss_script, slow_script
from harness.testing.netprobe import TCP_SEND, TCP_SINK, UDP_SEND, UDP_SINK


def run(backend: Backend, node: Node, script: str) -> None:
    r = backend.run(node, ["sh", "-c", script], timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"{node.name}: {r.stderr.strip()}")


def wait_listening(log: Path) -> None:
    deadline = time.monotonic() + 5
    while "listening" not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline:
            raise SystemExit(f"{log.name}: the sink did not start")
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datagrams", type=int, default=5000)
    parser.add_argument("--probabilities", default="0.1,0.3,0.5,0.9")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-lossy-"))
    # The machine-wide state directory, like a run's: concurrent runs see this one.
    backend = LocalBackend(f"bench-lossy-{os.getpid()}")
    try:
        n1, n2 = backend.provision(["n1", "n2"])
        udp_log, tcp_log = work / "udp.log", work / "tcp.log"
        backend.spawn(n2, "udp", [backend.python, "-u", "-c", UDP_SINK, "7041"], log_path=udp_log)
        backend.spawn(n2, "tcp", [backend.python, "-u", "-c", TCP_SINK, "7042"], log_path=tcp_log)
        wait_listening(udp_log)
        wait_listening(tcp_log)
        n = args.datagrams
        print(f"{'asked p':>8} {'measured':>9} {'sd':>6} {'datagrams':>10}")
        for i, p in enumerate(float(x) for x in args.probabilities.split(",")):
            run(backend, n2, loss_script([n1.address], p))
            tag = f"p{i}"
            argv = [backend.python, "-c", UDP_SEND, n2.address, "7041", str(n), tag, "0.0002"]
            backend.run(n1, argv, timeout=120)
            time.sleep(0.5)
            got = sum(1 for x in udp_log.read_text().splitlines() if x.startswith(f"{tag}-"))
            run(backend, n2, heal_script())
            sd = math.sqrt(p * (1 - p) / n)
            print(f"{p:>8.3f} {1 - got / n:>9.4f} {sd:>6.4f} {n:>10}")
        slow = Slow(rate_kbit=256, burst_bytes=8000, latency_ms=200)
        size = 128_000
        argv = [backend.python, "-c", TCP_SEND, n2.address, "7042", str(size)]
        base = float(backend.run(n1, argv, timeout=60).stdout)
        run(backend, n1, slow_script([n2.address], slow))
        shaped = float(backend.run(n1, argv, timeout=120).stdout)
        run(backend, n1, heal_script())
        ideal = (size - slow.burst_bytes) * 8 / (slow.rate_kbit * 1000)
        print(
            f"\nslow link {slow.rate_kbit} kbit/s, burst {slow.burst_bytes} B: {size} B over "
            f"TCP took {shaped:.2f} s (rate alone: {ideal:.2f} s; unshaped {base:.3f} s)"
        )
    finally:
        backend.teardown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
