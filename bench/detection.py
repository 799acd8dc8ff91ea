"""Benchmark: detection power. Seeded runs of each configuration under its fault; prints
caught/runs per row and whether the goal is met.

Goals: each unsafe reference configuration is caught by its fault in at least 19 of 20
runs and safe.yaml passes 20 of 20 under every nemesis (issue 4); the naive etcd and
Consul candidates are caught under `pause` in at least 19 of 20, the guarded ones with
fencing pass 20 of 20 under partition, pause and kill, and a guarded etcd candidate with
a slow clock is caught (issue 5). A flaw of the server itself that shows only in some runs
(etcd 3.5.16 revoking renewed leases after a leader's pause) is "seen": caught at least
once, and every caught run shows only the kinds it may cause (split-brain, never a stale
write, because fencing must hold). Needs root (network namespaces) or a Docker daemon.
About (time limit + 8 s) per run, one run at a time; the Consul pause row runs 60 s.

    python bench/detection.py [--runs 20] [--time-limit 30] [--only etcd,consul]
        [--backend auto|local|docker|ssh] [--hosts hosts.yaml] [--plain]
        [--first-seed 1] [--jobs N]

`--plain` measures the "plain options" rows instead (issue 14): each known-unsafe
setup with only `--config X --nemesis all`, and with the single nemesis README names
for it, and each safe setup under `all`, all at the DEFAULT time limit (no
--time-limit: the runner fits three of the target's long faults). Every row also prints
the median time from the first fault to the first violation (from the run's history).
`--jobs N` runs a row's seeds N at a time (harness.suite.jobs, each in a child process).

With `--backend ssh` and no `--hosts`, 3 sshd containers from the node image
(tests/backends/sshd_hosts.py) are the hosts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from harness import options as opts
from harness.run.progress import LineProgress
from harness.run.runner import Runner, RunOutcome
from harness.runconfig import load_run_config
from harness.suite.jobs import Children, run_in_child, run_pool

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    label: str
    config: str
    nemeses: tuple[str, ...] | None  # None: the configuration's own
    expect: str  # "caught", "valid" or "seen" (caught at least once, only of `allow`)
    own_time_limit: bool = False  # keep the configuration's time limit (long faults)
    allow: tuple[str, ...] = ()  # "seen": the only violation kinds a run may show


ROWS = [
    *(
        Row(f"safe/{n}", "configs/reference/safe.yaml", (n,), "valid")
        for n in ("partition", "pause", "kill", "clock")
    ),
    Row("safe/clock+partition", "configs/detection/safe-clock-partition.yaml", None, "valid"),
    Row("no-persist/kill", "configs/detection/no-persist-kill.yaml", None, "caught"),
    Row(
        "no-check-quorum/partition",
        "configs/detection/no-check-quorum-partition.yaml",
        None,
        "caught",
    ),
    Row("zero-drift/clock", "configs/detection/zero-drift-clock.yaml", None, "caught"),
    Row("etcd-naive/pause", "configs/detection/etcd-naive-pause.yaml", None, "caught"),
    Row("consul-naive/pause", "configs/detection/consul-naive-pause.yaml", None, "caught", True),
    *(
        Row(f"{t}-guarded/{n}", f"configs/{t}/guarded.yaml", (n,), "valid")
        for t in ("etcd", "consul")
        for n in ("partition", "pause", "kill")
    ),
    # The three together, as the ssh backend's figure names them (issue 13).
    Row(
        "etcd-guarded/partition+pause+kill",
        "configs/etcd/guarded.yaml",
        ("partition", "pause", "kill"),
        "valid",
    ),
    Row(
        "etcd-guarded-slow-clock/clock+pause",
        "configs/detection/etcd-guarded-slow-clock.yaml",
        None,
        "caught",
    ),
    # etcd's own race (docs/FACTS.md): rare per run, so "seen", and fencing must hold.
    Row(
        "etcd-guarded-leader-pause/pause",
        "configs/detection/etcd-guarded-leader-pause.yaml",
        None,
        "seen",
        allow=("split-brain",),
    ),
    # Bring your own (issue 12): external programs and an out-of-tree target.
    Row("byo-etcd3gw-naive/pause", "configs/byo/etcd3gw-naive-pause.yaml", None, "caught"),
    Row("byo-etcd3gw-guarded/pause", "configs/byo/etcd3gw-guarded-pause.yaml", None, "valid"),
    Row("byo-shell-naive/pause", "configs/byo/shell-naive-pause.yaml", None, "caught"),
    Row("byo-etcd34-plugin/partition", "configs/byo/etcd34-plugin-guarded.yaml", None, "valid"),
]


# Plain options (issue 14): only --config and --nemesis, the default time limit.
PLAIN_UNSAFE = [
    ("etcd-naive", "configs/etcd/naive.yaml", "pause"),
    ("consul-naive", "configs/consul/naive.yaml", "pause"),
    ("no-persist", "configs/reference/unsafe-no-persist.yaml", "kill"),
    ("no-check-quorum", "configs/reference/unsafe-no-check-quorum.yaml", "partition"),
    # Skew alone starts no election: the slow leader must also be cut off (README).
    ("zero-drift", "configs/reference/unsafe-zero-drift.yaml", "clock,partition"),
    # Liveness: flaps under one-link cuts; without leader stickiness unsafe as well.
    ("no-pre-vote", "configs/reference/unsafe-no-pre-vote.yaml", "partition"),
]
PLAIN_SAFE = [
    ("etcd-guarded", "configs/etcd/guarded.yaml"),
    ("consul-guarded", "configs/consul/guarded.yaml"),
    ("safe", "configs/reference/safe.yaml"),
]
PLAIN_ROWS = [
    *(
        Row(f"plain/{label}/{n}", config, tuple(n.split(",")), "caught", own_time_limit=True)
        for label, config, single in PLAIN_UNSAFE
        for n in ("all", single)
    ),
    *(
        Row(f"plain/{label}/all", config, ("all",), "valid", own_time_limit=True)
        for label, config in PLAIN_SAFE
    ),
]


def first_violation_s(run_dir: Path | None) -> float | None:
    """Seconds from the run's first fault to the moment its first violation was evident
    (the latest event a violation cites: a duplicate token is evident at its second
    grant, not at the first), both on the run's reference clock; None if unknown."""
    if run_dir is None:
        return None
    try:
        results = orjson.loads((run_dir / "results.json").read_bytes())
        violations = (results.get("verdict") or {}).get("violations") or []
        evident = [
            max((e["time"] for e in v.get("events") or []), default=v["end"]) for v in violations
        ]
        if not evident:
            return None
        first_fault = None
        with open(run_dir / "history.jsonl", "rb") as history:
            for line in history:
                event = orjson.loads(line)
                if event.get("process") == "nemesis":
                    first_fault = event["time"]
                    break
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if first_fault is None:
        return None
    return max(0.0, (min(evident) - first_fault) / 1e9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--only", help="comma-separated row labels or prefixes")
    parser.add_argument("--keep", action="store_true", help="keep every run directory")
    parser.add_argument("--backend", default="auto", choices=opts.backend_names())
    parser.add_argument("--hosts", help="ssh backend: the inventory (default: sshd containers)")
    parser.add_argument("--plain", action="store_true", help="the plain-options rows")
    parser.add_argument("--first-seed", type=int, default=1, help="seeds first..first+runs-1")
    parser.add_argument("--jobs", type=int, default=1, help="runs of a row side by side")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.backend == "ssh" and args.hosts is None:
            sys.path.insert(0, str(REPO))
            from tests.backends.sshd_hosts import sshd_hosts

            work = Path(tempfile.mkdtemp(prefix="detection-sshd-"))
            stack.callback(shutil.rmtree, work, ignore_errors=True)
            args.hosts = str(stack.enter_context(sshd_hosts(work)).inventory)
        return measure(args)


def run_one(row: Row, seed: int, args: argparse.Namespace, store: Path) -> RunOutcome:
    overrides = {
        "seed": seed,
        "time_limit": None if row.own_time_limit else args.time_limit,
        "nemeses": row.nemeses,
        "backend": args.backend,
        "hosts": args.hosts,
    }
    cfg = load_run_config(REPO / row.config, overrides)
    quiet = LineProgress(io.StringIO())
    if args.jobs > 1:
        return run_in_child(cfg, store, quiet, CHILDREN)
    return Runner(cfg, store=store, progress=quiet).execute()


CHILDREN = Children()


def run_row(row: Row, seeds: range, args: argparse.Namespace, store: Path) -> dict[int, RunOutcome]:
    """Every seed of one row, `args.jobs` at a time (one at a time in this thread, where
    the runner's signal handling stops a run on Ctrl-C)."""
    outcomes: dict[int, RunOutcome] = {}
    if args.jobs <= 1:
        for seed in seeds:
            outcomes[seed] = run_one(row, seed, args, store)
            if outcomes[seed].interrupted:
                break
        return outcomes
    lock = threading.Lock()

    def work(seed: int) -> None:
        outcome = run_one(row, seed, args, store)
        with lock:
            outcomes[seed] = outcome
        if outcome.interrupted:
            CHILDREN.stop(f"interrupted during {row.label} seed {seed}")

    run_pool(list(seeds), max(1, args.jobs), work, CHILDREN)
    return outcomes


def measure(args: argparse.Namespace) -> int:
    table = PLAIN_ROWS if args.plain else ROWS
    rows = table
    if args.only:
        wanted = args.only.split(",")
        rows = [r for r in table if any(r.label.startswith(w) for w in wanted)]
    if "etcd34" not in opts.target_names():
        note = "skipping byo-etcd34-plugin: pip install examples/harness-target-etcd34"
        print(note, file=sys.stderr)
        rows = [r for r in rows if not r.label.startswith("byo-etcd34")]
    store = Path(tempfile.mkdtemp(prefix="detection-"))
    goal = {"caught": args.runs - args.runs // 20, "valid": args.runs, "seen": 1}
    seeds = range(args.first_seed, args.first_seed + args.runs)
    results = []
    for row in rows:
        caught = valid = errors = 0
        other: set[str] = set()  # "seen" rows: kinds outside the row's allowed ones
        to_violation: list[float] = []
        started = time.monotonic()
        outcomes = run_row(row, seeds, args, store)
        for seed in seeds:
            outcome = outcomes.get(seed)
            if outcome is None or outcome.interrupted:
                raise SystemExit(f"interrupted during {row.label} seed {seed}")
            outside: set[str] = set()  # "seen" rows: this run's kinds beyond `allow`
            if outcome.exit_code == 1:
                caught += 1
                kinds = sorted({v["kind"] for v in outcome.verdict["violations"]})
                note = ", ".join(kinds)
                if row.expect == "seen":
                    outside = set(kinds) - set(row.allow)
                    other |= outside
                first = first_violation_s(outcome.run_dir)
                if first is not None:
                    to_violation.append(first)
                    note += f" ({first:.1f} s after the first fault)"
            elif outcome.exit_code == 0:
                valid += 1
                note = "valid"
            else:
                errors += 1
                note = f"error: {outcome.error}"
            if row.expect == "seen":
                expected = outcome.exit_code in (0, 1) and not outside
            else:
                expected = (outcome.exit_code == 1) == (row.expect == "caught")
            if expected and not args.keep and outcome.run_dir is not None:
                shutil.rmtree(outcome.run_dir, ignore_errors=True)
            where = "" if expected or outcome.run_dir is None else f" (kept: {outcome.run_dir})"
            print(f"  {row.label} seed {seed}: {note}{where}", file=sys.stderr, flush=True)
        hits = valid if row.expect == "valid" else caught
        met = hits >= goal[row.expect] and errors == 0 and not other
        median = statistics.median(to_violation) if to_violation else None
        if other:
            print(f"  {row.label}: kinds outside {row.allow}: {sorted(other)}", file=sys.stderr)
        results.append((row, hits, errors, met, time.monotonic() - started, median))
    print(
        f"\n{'configuration/nemesis':<36} {'expect':<7} {'result':>9} {'errors':>6}  goal"
        f"  (median s from the first fault to the first violation)"
    )
    for row, hits, errors, met, seconds, median in results:
        word = "valid" if row.expect == "valid" else "caught"
        first = f", first violation {median:.1f} s" if median is not None else ""
        print(
            f"{row.label:<36} {row.expect:<7} {hits:>3}/{args.runs:<2} {word:<0} {errors:>3}"
            f"  {'met' if met else 'NOT met'} ({seconds / args.runs:.0f} s/run{first})"
        )
    link = store / "latest"
    if link.is_symlink() and not link.exists():
        link.unlink()  # it pointed at a run that was removed
    if not any(store.iterdir()):
        store.rmdir()
    else:
        print(f"\nrun directories kept in {store}")
    return 0 if all(met for *_, met, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
