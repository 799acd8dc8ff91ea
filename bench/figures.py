"""Benchmark: the run's figures. Prints the seconds from starting a 3-node cluster to a
leader agreed by a majority, and the wall time of a whole 30 s run from start to verdict.

Goals: the reference elector on the local backend up in <= 3 s and a whole 30 s run in
<= 45 s (issue 4); etcd in containers up in <= 5 s with the node image built, and a
whole 30 s run in <= 60 s (issue 5); on ssh hosts (warm: nothing to upload) up within 2x
the docker figure (issue 13). Needs root (namespaces) or a Docker daemon.

    python bench/figures.py [--target NAME] [--backend local|docker|ssh]
        [--hosts hosts.yaml] [--repeat 5] [--time-limit 30] [--nemesis partition]

With `--backend ssh` and no `--hosts`, it starts 3 sshd containers from the node image
(tests/backends/sshd_hosts.py) as the hosts; the first (cold) deployment is done before timing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.backends import create_backend
from harness.history import HistoryWriter
from harness.options import target_names
from harness.recorder import Recorder, RefClock
from harness.run.probe import StatusProbe
from harness.run.progress import LineProgress
from harness.run.runner import Runner
from harness.runconfig import load_run_config
from harness.targets import make_target
from harness.wait import WaitTimeout

# (up, run overhead) in seconds; ssh: 2x the docker up figure measured (1.86 s).
GOALS = {"local": (3.0, 15.0), "docker": (5.0, 30.0), "ssh": (3.72, 30.0)}


def leader_seconds(
    work: Path, target_name: str, backend_name: str, options: dict[str, Any] | None = None
) -> float:
    """Provision 3 nodes, start the members, time until a majority agrees on a leader."""
    work.mkdir(parents=True)
    backend = create_backend(backend_name, secrets.token_hex(4), **(options or {}))
    target = make_target(target_name, {})
    recorder = Recorder(HistoryWriter(work / f"probe-{secrets.token_hex(3)}.jsonl"), RefClock())
    daemons = []
    probe = None
    try:
        started = time.monotonic()
        nodes = backend.provision(["n1", "n2", "n3"], shared_dir=work)
        target.setup(backend, nodes, work)
        daemons = [target.start_member(node) for node in nodes]
        probe = StatusProbe(target, nodes, recorder, 0.02)
        probe.start()
        try:
            probe.wait_for_leader(30.0)
        except WaitTimeout as exc:
            raise SystemExit(str(exc)) from exc
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
    # The registries' names (installed plugins included); GOALS has figures for the built-in
    # backends only.
    parser.add_argument("--target", default="reference", choices=target_names())
    parser.add_argument("--backend", default="local", choices=tuple(GOALS))
    parser.add_argument("--hosts", help="ssh backend: the inventory (default: sshd containers)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--nemesis", default="partition")
    args = parser.parse_args()
    options: dict[str, Any] = {}
    if args.backend == "docker":
        from harness.image.build import ensure_run_image

        # The run image (node image + the target's servers layer) built beforehand: the
        # goal is "with the image built". Each provision still finds it, as a run does.
        packages = make_target(args.target, {}).run_packages
        ensure_run_image(packages)
        options = {"servers": packages}
    up_goal, overhead_goal = GOALS[args.backend]
    work = Path(tempfile.mkdtemp(prefix="figures-"))
    with contextlib.ExitStack() as stack:
        if args.backend == "ssh":
            hosts = args.hosts
            if hosts is None:
                sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
                from tests.backends.sshd_hosts import sshd_hosts

                hosts = str(stack.enter_context(sshd_hosts(work / "sshd")).inventory)
            options = {"hosts": hosts, "needs_python": args.target == "reference"}
            # Warm the hosts: the figure is for a deployment already in place.
            leader_seconds(work / "warm", args.target, args.backend, options)
        measure(args, work, options, up_goal, overhead_goal)


def measure(
    args: argparse.Namespace,
    work: Path,
    options: dict[str, Any],
    up_goal: float,
    overhead_goal: float,
) -> None:
    try:
        ups = [
            leader_seconds(work / f"up{i}", args.target, args.backend, options)
            for i in range(args.repeat)
        ]
        print(
            f"3-node {args.target} cluster ({args.backend}) up with a leader: "
            f"median {statistics.median(ups):.2f} s, max {max(ups):.2f} s over {len(ups)} "
            f"(goal <= {up_goal:g} s)",
            flush=True,
        )
        cfg = load_run_config(
            None,
            {
                "target": args.target,
                "backend": args.backend,
                "hosts": options.get("hosts"),
                "time_limit": args.time_limit,
                "nemeses": (args.nemesis,),
                "seed": 1,
            },
        )
        started = time.monotonic()
        outcome = Runner(cfg, store=work / "store", progress=LineProgress(io.StringIO())).execute()
        wall = time.monotonic() - started
        print(
            f"whole {args.time_limit:g} s {args.target} run ({args.backend}, {args.nemesis}), "
            f"start to verdict: {wall:.1f} s (goal <= {args.time_limit + overhead_goal:g} s; "
            f"exit {outcome.exit_code})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
