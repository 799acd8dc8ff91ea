"""Benchmark: detection power. Seeded runs of each configuration under its fault; prints
caught/runs per row and whether the goal is met.

Goals: each unsafe reference configuration is caught by its fault in at least 19 of 20
runs and safe.yaml passes 20 of 20 under every nemesis (issue 4); the naive etcd and
Consul candidates are caught under `pause` in at least 19 of 20, the guarded ones with
fencing pass 20 of 20 under partition, pause and kill, and a guarded etcd candidate with
a slow clock is caught (issue 5). Needs root (network namespaces) or a Docker daemon.
About (time limit + 8 s) per run, one run at a time; the Consul pause row runs 60 s.

    python bench/detection.py [--runs 20] [--time-limit 30] [--only etcd,consul]
        [--backend auto|local|docker]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.run.progress import LineProgress
from harness.run.runner import Runner
from harness.runconfig import load_run_config

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    label: str
    config: str
    nemeses: tuple[str, ...] | None  # None: the configuration's own
    expect: str  # "caught" or "valid"
    own_time_limit: bool = False  # keep the configuration's time limit (long faults)


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
    Row(
        "etcd-guarded-slow-clock/clock+pause",
        "configs/detection/etcd-guarded-slow-clock.yaml",
        None,
        "caught",
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--only", help="comma-separated row labels or prefixes")
    parser.add_argument("--keep", action="store_true", help="keep every run directory")
    parser.add_argument("--backend", default="auto", choices=("auto", "local", "docker"))
    args = parser.parse_args()
    rows = ROWS
    if args.only:
        wanted = args.only.split(",")
        rows = [r for r in ROWS if any(r.label.startswith(w) for w in wanted)]
    store = Path(tempfile.mkdtemp(prefix="detection-"))
    goal = {"caught": args.runs - args.runs // 20, "valid": args.runs}
    results = []
    for row in rows:
        caught = valid = errors = 0
        started = time.monotonic()
        for seed in range(1, args.runs + 1):
            overrides = {
                "seed": seed,
                "time_limit": None if row.own_time_limit else args.time_limit,
                "nemeses": row.nemeses,
                "backend": args.backend,
            }
            cfg = load_run_config(REPO / row.config, overrides)
            outcome = Runner(cfg, store=store, progress=LineProgress(io.StringIO())).execute()
            if outcome.interrupted:
                raise SystemExit(f"interrupted during {row.label} seed {seed}")
            if outcome.exit_code == 1:
                caught += 1
                kinds = sorted({v["kind"] for v in outcome.verdict["violations"]})
                note = ", ".join(kinds)
            elif outcome.exit_code == 0:
                valid += 1
                note = "valid"
            else:
                errors += 1
                note = f"error: {outcome.error}"
            expected = (outcome.exit_code == 1) == (row.expect == "caught")
            if expected and not args.keep and outcome.run_dir is not None:
                shutil.rmtree(outcome.run_dir, ignore_errors=True)
            where = "" if expected or outcome.run_dir is None else f" (kept: {outcome.run_dir})"
            print(f"  {row.label} seed {seed}: {note}{where}", file=sys.stderr, flush=True)
        hits = caught if row.expect == "caught" else valid
        met = hits >= goal[row.expect] and errors == 0
        results.append((row, hits, errors, met, time.monotonic() - started))
    print(f"\n{'configuration/nemesis':<36} {'expect':<7} {'result':>9} {'errors':>6}  goal")
    for row, hits, errors, met, seconds in results:
        word = "caught" if row.expect == "caught" else "valid"
        print(
            f"{row.label:<36} {row.expect:<7} {hits:>3}/{args.runs:<2} {word:<0} {errors:>3}"
            f"  {'met' if met else 'NOT met'} ({seconds / args.runs:.0f} s/run)"
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
