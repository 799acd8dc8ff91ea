"""Benchmark: the run's figures. Prints the seconds from starting a 3-node reference
cluster to a leader agreed by a majority, and the wall time of a whole 30 s run from
start to verdict.

Goals (issue 4): cluster up with a leader in <= 3 s; a whole 30 s run in <= 45 s.
Needs root (network namespaces).

    python bench/figures.py [--repeat 5] [--time-limit 30] [--nemesis partition]
"""

from __future__ import annotations

import argparse
import io
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness.backends.local import LocalBackend
from harness.history import HistoryWriter
from harness.recorder import Recorder, RefClock
from harness.run.probe import StatusProbe
from harness.run.progress import LineProgress
from harness.run.runner import Runner
from harness.runconfig import load_run_config
from harness.targets.reference import ReferenceTarget


def leader_seconds(work: Path) -> float:
    """Provision 3 namespaces, start the electors, time until a majority agrees."""
    work.mkdir(parents=True)
    backend = LocalBackend(secrets.token_hex(4))
    target = ReferenceTarget()
    recorder = Recorder(HistoryWriter(work / f"probe-{secrets.token_hex(3)}.jsonl"), RefClock())
    daemons = []
    probe = None
    try:
        started = time.monotonic()
        nodes = backend.provision(["n1", "n2", "n3"])
        target.setup(backend, nodes, work)
        daemons = [target.start_member(node) for node in nodes]
        probe = StatusProbe(target, nodes, recorder, 0.02)
        probe.start()
        if probe.wait_for_leader(30.0) is None:
            raise SystemExit("no leader within 30 s")
        return time.monotonic() - started
    finally:
        if probe is not None:
            probe.stop()
        for daemon in daemons:
            daemon.stop(timeout=2.0)
        target.close()
        backend.teardown()
        recorder.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--nemesis", default="partition")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="figures-"))
    try:
        ups = [leader_seconds(work / f"up{i}") for i in range(args.repeat)]
        print(
            f"3-node reference cluster up with a leader: median {statistics.median(ups):.2f} s, "
            f"max {max(ups):.2f} s over {len(ups)} (goal <= 3 s)",
            flush=True,
        )
        cfg = load_run_config(
            None, {"time_limit": args.time_limit, "nemeses": (args.nemesis,), "seed": 1}
        )
        started = time.monotonic()
        outcome = Runner(cfg, store=work / "store", progress=LineProgress(io.StringIO())).execute()
        wall = time.monotonic() - started
        print(
            f"whole {args.time_limit:g} s run ({args.nemesis}), start to verdict: {wall:.1f} s "
            f"(goal <= {args.time_limit + 15:g} s; exit {outcome.exit_code})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
