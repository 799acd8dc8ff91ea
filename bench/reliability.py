"""Interruption soak: runs interrupted at a random moment, and what each leaves behind.

    python bench/reliability.py [--runs 30] [--backends docker,local] [--time-limit 8]

Each run is `harness run --target reference --nemesis partition,pause,kill,clock` on one
backend, sent SIGINT, SIGTERM, SIGHUP or SIGKILL (in turn, so each signal gets a quarter
of the runs) at a uniformly random moment between 1 s and the run's expected length.
After it exits, the bench counts what that run (and only that run: other harnesses may be
running on this machine) left: containers and networks labelled with its run id, network
namespaces, links and host FORWARD rules named by its local state, host processes whose
command line names its run directory (members, candidates), and those of them stopped
(T state). After a SIGKILL, nothing can clean up, so it counts again after the next run
started (an uninterrupted short run right after it), which must have removed them. Then
two runs are started at the same moment on each backend: both must finish with a verdict
of their own, neither removing the other's nodes. Prints one row per signal and backend.

Needs root (the local backend) and a Docker daemon with the node image (docker backend).
Timing under load: a run that has not exited 150 s after its signal counts as hung.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HARNESS = [sys.executable, "-m", "harness"]
STATE_DIR = Path("/run/leader-harness/local")
SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGKILL")
HUNG_S = 150.0
LEFT_KINDS = ("containers", "networks", "netns", "links", "rules", "procs", "stopped")


@dataclass
class Trace:
    """What one run is known by: its run directory and run id, its local short id."""

    store: Path
    run_dir: Path | None = None
    run_id: str | None = None
    short_id: str | None = None


@dataclass
class Row:
    runs: int = 0
    finished_first: int = 0  # the run ended before its signal was due: not interrupted
    exit_codes: list[int] = field(default_factory=list)
    hung: int = 0
    left: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEFT_KINDS, 0))
    dirty_runs: int = 0  # runs that left anything
    after_next: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEFT_KINDS, 0))
    dirty_after_next: int = 0


def run_argv(backend: str, seed: int, time_limit: float, store: Path) -> list[str]:
    return [
        *HARNESS, "run", "--target", "reference", "--nemesis", "partition,pause,kill,clock",
        "--backend", backend, "--time-limit", f"{time_limit:g}", "--seed", str(seed),
        "--store", str(store),
    ]  # fmt: skip


def learn(trace: Trace) -> None:
    """Fill in the run directory, run id and local short id as soon as they exist."""
    if trace.run_dir is None:
        dirs = [p for p in trace.store.iterdir() if p.is_dir() and not p.is_symlink()]
        if dirs:
            trace.run_dir = dirs[0]
    if trace.run_dir is not None and trace.run_id is None:
        config = trace.run_dir / "config.yaml"
        if config.exists():
            for line in config.read_text().splitlines():
                if line.startswith("run_id:"):
                    trace.run_id = line.split(":", 1)[1].strip().strip("'\"")
    if trace.run_id is not None and trace.short_id is None and STATE_DIR.is_dir():
        for path in STATE_DIR.glob("*.json"):
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if state.get("run_id") == trace.run_id:
                trace.short_id = state.get("short_id")


def short_id_guess(run_id: str) -> str:
    """The local backend's usual short id for a run (derived from its run id)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:6]


def _lines(argv: list[str]) -> list[str]:
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if line.strip()]


def leftovers(trace: Trace) -> dict[str, int]:
    """What this run left on the host, by kind (only objects named by this run)."""
    left = dict.fromkeys(LEFT_KINDS, 0)
    if trace.run_id is not None:
        label = f"label=org.leader-harness.run={trace.run_id}"
        left["containers"] = len(_lines(["docker", "ps", "-aq", "--filter", label]))
        left["networks"] = len(_lines(["docker", "network", "ls", "-q", "--filter", label]))
    sid = trace.short_id or (short_id_guess(trace.run_id) if trace.run_id else None)
    if sid is not None:
        left["netns"] = sum(
            1 for line in _lines(["ip", "netns", "list"]) if line.startswith(f"lh-{sid}-")
        )
        left["links"] = sum(
            1 for name in os.listdir("/sys/class/net") if name in (f"lhb{sid}",)
            or name.startswith(f"lh{sid}n")
        )  # fmt: skip
        left["rules"] = sum(
            1
            for line in _lines(["iptables-save", "-t", "filter"])
            if f"leader-harness local run {sid}" in line
        )
    if trace.run_dir is not None:
        needle = str(trace.run_dir).encode()
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if needle not in cmdline:
                    continue
                stat = Path(f"/proc/{pid}/stat").read_bytes()
            except OSError:
                continue
            if int(pid) == os.getpid():
                continue
            left["procs"] += 1
            if stat[stat.rindex(b")") + 2 :].split()[0] in (b"T", b"t"):
                left["stopped"] += 1
    return left


def _default_signals() -> None:
    for sig in SIGNALS[:3]:
        signal.signal(getattr(signal, sig), signal.SIG_DFL)


def interrupted_run(
    backend: str, seed: int, sig: str, time_limit: float, base: Path, rng: random.Random
) -> tuple[Trace, int | None, bool]:
    store = base / f"{backend}-{seed}"
    store.mkdir(parents=True)
    trace = Trace(store)
    # Provisioning (the docker image check, nodes), the run, heal, quiet period, teardown;
    # a little short of a whole run, so that most runs are still going when signalled.
    expected = time_limit + (20.0 if backend == "docker" else 10.0)
    at = rng.uniform(1.0, expected)
    proc = subprocess.Popen(
        run_argv(backend, seed, time_limit, store),
        # Default dispositions (the bench itself may run under nohup: SIGHUP ignored).
        preexec_fn=_default_signals,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(store / "harness.stderr", "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,  # our Ctrl-C is not its Ctrl-C
        cwd=ROOT,
    )
    deadline = time.monotonic() + at
    while time.monotonic() < deadline and proc.poll() is None:
        learn(trace)
        time.sleep(0.1)
    learn(trace)
    signalled = proc.poll() is None
    if signalled:
        proc.send_signal(getattr(signal, sig))
    try:
        code: int | None = proc.wait(timeout=HUNG_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    learn(trace)
    return trace, code, signalled


def cleanup_run(backend: str, base: Path, n: int) -> Trace:
    """An uninterrupted short run: it must remove a killed harness's leftovers first."""
    store = base / f"{backend}-next-{n}"
    store.mkdir()
    subprocess.run(
        run_argv(backend, 1000 + n, 2, store),
        capture_output=True,
        cwd=ROOT,
        check=False,
        preexec_fn=_default_signals,
    )
    trace = Trace(store)
    learn(trace)
    return trace


def soak(args: argparse.Namespace, base: Path) -> dict[tuple[str, str], Row]:
    rng = random.Random(args.seed)
    rows: dict[tuple[str, str], Row] = defaultdict(Row)
    for backend in args.backends:
        for i in range(args.runs):
            sig = args.signals[i % len(args.signals)]
            trace, code, signalled = interrupted_run(
                backend, i + 1, sig, args.time_limit, base, rng
            )
            row = rows[(backend, sig)]
            row.runs += 1
            row.finished_first += not signalled
            if code is None:
                row.hung += 1
            else:
                row.exit_codes.append(code)
            left = leftovers(trace)
            for kind, n in left.items():
                row.left[kind] += n
            row.dirty_runs += any(left.values())
            after = ""
            if sig == "SIGKILL":
                # Nothing can clean up after SIGKILL: the next run must. Count what the
                # killed run left once a run has started (and what that run left).
                nxt = cleanup_run(backend, base, i)
                again = leftovers(trace)
                theirs = leftovers(nxt)
                for kind in LEFT_KINDS:
                    row.after_next[kind] += again[kind] + theirs[kind]
                row.dirty_after_next += any(again.values()) or any(theirs.values())
                after = ", after the next run: " + (
                    ", ".join(f"{k} {v}" for k, v in again.items() if v) or "nothing"
                )
            what = ", ".join(f"{k} {v}" for k, v in left.items() if v) or "nothing"
            when = "" if signalled else " (ended before the signal)"
            print(
                f"{backend} run {i + 1}/{args.runs} {sig}{when}: exit {code}, left {what}{after}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def concurrent(backend: str, time_limit: float, base: Path) -> str:
    """Two runs started together: each must end with a verdict of its own (exit 0 or 1),
    its results naming its own run id, and neither may clean up the other's nodes."""
    procs, stores = [], []
    for seed in (101, 102):
        store = base / f"{backend}-concurrent-{seed}"
        store.mkdir()
        stores.append(store)
        procs.append(
            subprocess.Popen(
                run_argv(backend, seed, time_limit, store),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=ROOT,
            )
        )
    outs = [p.communicate(timeout=600) for p in procs]
    ids, verdicts = [], []
    for store, proc in zip(stores, procs, strict=True):
        results: dict[str, Any] = json.loads((store / "latest" / "results.json").read_text())
        ids.append(results["run_id"])
        verdicts.append((proc.returncode, (results.get("verdict") or {}).get("valid")))
    touched = [
        any(
            other in line or short_id_guess(other) in line
            for line in err.decode().splitlines()
            if "leftover" in line
        )
        for other, (_, err) in zip(reversed(ids), outs, strict=True)
    ]
    ok = all(code in (0, 1) and valid in (True, False) for code, valid in verdicts)
    ok = ok and not any(touched) and ids[0] != ids[1]
    return (
        f"{backend}: two runs at once: exits {[v[0] for v in verdicts]}, verdicts "
        f"{[v[1] for v in verdicts]}, cleaned the other's nodes: {touched} -> "
        f"{'OK' if ok else 'FAILED'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="interrupted runs per backend")
    parser.add_argument("--backends", default="docker,local", type=lambda s: s.split(","))
    parser.add_argument("--time-limit", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1, help="seed of the interruption times")
    parser.add_argument(
        "--signals",
        default=",".join(SIGNALS),
        type=lambda s: [x for x in s.split(",") if x in SIGNALS] or list(SIGNALS),
        help="signals sent in turn (default SIGINT,SIGTERM,SIGHUP,SIGKILL)",
    )
    parser.add_argument("--store", default="/tmp/reliability-soak", help="run directories")
    parser.add_argument("--no-concurrent", action="store_true")
    args = parser.parse_args()
    base = Path(args.store) / time.strftime("%Y%m%d-%H%M%S")
    base.mkdir(parents=True)
    started = time.monotonic()
    rows = soak(args, base)
    print(
        f"interruption soak: {args.runs} run(s) per backend, --time-limit {args.time_limit:g}, "
        f"signal at a uniform random moment; {time.monotonic() - started:.0f} s"
    )
    print(
        f"{'backend':8} {'signal':8} {'runs':>4} {'sent':>4} {'hung':>4}  exits        left behind "
        "(runs dirty: containers networks netns links rules procs stopped)"
        "   after the next run (SIGKILL)"
    )
    for (backend, sig), row in sorted(rows.items()):
        codes = ",".join(str(c) for c in sorted(set(row.exit_codes))) or "-"
        left = " ".join(str(row.left[k]) for k in LEFT_KINDS)
        after = (
            f"{row.dirty_after_next}: " + " ".join(str(row.after_next[k]) for k in LEFT_KINDS)
            if sig == "SIGKILL"
            else "-"
        )
        print(
            f"{backend:8} {sig:8} {row.runs:>4} {row.runs - row.finished_first:>4} "
            f"{row.hung:>4}  {codes:12} "
            f"{row.dirty_runs}: {left:30} {after}"
        )
    if not args.no_concurrent:
        for backend in args.backends:
            print(concurrent(backend, args.time_limit, base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
