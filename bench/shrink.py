"""Benchmark: shrinking. For each detection configuration: seeded runs until one fails
(its default seeded schedule), `harness shrink` on it, then `shrunk.yaml` run again
`--repro` times; prints faults before -> after, time limit before -> after, the
reproduction rate, and the search's wall time.

Goal (issue 16): at most 2 faults and at most half the original time limit in each case,
reproducing in >= 8 of 10 runs, within 20 minutes of search each. Needs root (local
backend) or a Docker daemon. One run at a time per process; timings are wall clock on a
shared machine.

    python bench/shrink.py [--only no-persist,etcd] [--budget 20m] [--tries 3]
        [--min-rate R] [--repro 10] [--seeds 5] [--backend auto|local|docker] [--store DIR]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from harness.exitcodes import EXIT_INVALID
from harness.run.progress import LineProgress
from harness.run.runner import Runner
from harness.runconfig import load_run_config
from harness.shrink.cli import parse_budget, shrink_run

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    label: str
    config: str


ROWS = [
    Row("no-persist/kill", "configs/detection/no-persist-kill.yaml"),
    Row("no-check-quorum/partition", "configs/detection/no-check-quorum-partition.yaml"),
    Row("zero-drift/clock+partition", "configs/detection/zero-drift-clock.yaml"),
    Row("no-pre-vote/one-link", "configs/detection/no-pre-vote-one-link.yaml"),
    Row("etcd-naive/pause", "configs/detection/etcd-naive-pause.yaml"),
    Row("consul-naive/pause", "configs/detection/consul-naive-pause.yaml"),
    Row("etcd-guarded-slow-clock/clock+pause", "configs/detection/etcd-guarded-slow-clock.yaml"),
]


def quiet() -> LineProgress:
    return LineProgress(io.StringIO())


def failing_run(row: Row, seeds: int, backend: str, store: Path) -> Path | None:
    for seed in range(1, seeds + 1):
        cfg = load_run_config(REPO / row.config, {"seed": seed, "backend": backend})
        outcome = Runner(cfg, store=store, progress=quiet()).execute()
        if outcome.interrupted:
            raise SystemExit(f"interrupted during {row.label} seed {seed}")
        print(f"  {row.label} seed {seed}: exit {outcome.exit_code}", file=sys.stderr, flush=True)
        if outcome.exit_code == EXIT_INVALID and outcome.run_dir is not None:
            return outcome.run_dir
    return None


def reproduce(shrunk: Path, kinds: set[str], runs: int, store: Path) -> tuple[int, int]:
    """(failing runs with a wanted kind, runs that could not run) out of `runs`."""
    failed = errors = 0
    for i in range(runs):
        cfg = load_run_config(shrunk)
        outcome = Runner(cfg, store=store, progress=quiet()).execute()
        if outcome.interrupted:
            raise SystemExit(f"interrupted while reproducing {shrunk}")
        found = {v["kind"] for v in (outcome.verdict or {}).get("violations") or []}
        hit = outcome.exit_code == EXIT_INVALID and bool(found & kinds)
        failed += hit
        errors += outcome.exit_code == 2
        print(f"  repro {i + 1}/{runs}: {'fails' if hit else 'passes'} {sorted(found)}",
              file=sys.stderr, flush=True)  # fmt: skip
    return failed, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated row labels or prefixes")
    parser.add_argument("--budget", type=parse_budget, default=1200.0)
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--min-rate", type=float, default=None, help="as harness shrink's")
    parser.add_argument("--repro", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5, help="seeds tried for a failing run")
    parser.add_argument("--backend", default="auto", choices=("auto", "local", "docker"))
    parser.add_argument("--store", default=None, help="where runs go (a temporary directory)")
    args = parser.parse_args()
    rows = ROWS
    if args.only:
        wanted = args.only.split(",")
        rows = [r for r in ROWS if any(r.label.startswith(w) for w in wanted)]
    store = Path(args.store or f"/tmp/bench-shrink-{time.strftime('%Y%m%d-%H%M%S')}")
    store.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        run_dir = failing_run(row, args.seeds, args.backend, store / "source")
        if run_dir is None:
            lines.append(f"{row.label:<36} no failing run in {args.seeds} seeds")
            continue
        result, directory, text = shrink_run(
            run_dir,
            store,
            tries=args.tries,
            budget_s=args.budget,
            min_rate=args.min_rate,
            live=False,
        )
        print(text, file=sys.stderr, flush=True)
        kinds = set(orjson.loads((directory / "shrink.json").read_bytes())["kinds"])
        failed, errors = reproduce(directory / "shrunk.yaml", kinds, args.repro, store / "repro")
        before, after = result.start, result.best
        met = (
            len(after.plans) <= 2
            and after.time_limit <= before.time_limit / 2
            and failed >= 0.8 * args.repro
            and result.wall_s <= 1200
        )
        runs = sum(s.tries for s in result.steps)
        lines.append(
            f"{row.label:<36} faults {len(before.plans)} -> {len(after.plans)}; time limit "
            f"{before.time_limit:g} -> {after.time_limit:g} s; reproduces {failed}/{args.repro}"
            f"{f' ({errors} could not run)' if errors else ''}; "
            f"search {result.wall_s / 60:.1f} min, "
            f"{runs} runs, {result.stopped}; goal {'met' if met else 'NOT met'}  [{directory}]"
        )
        print(lines[-1], flush=True)
    rate = "at least 1" if args.min_rate is None else f"rate >= {args.min_rate:g}"
    print(f"\nbudget {args.budget / 60:g} min, {args.tries} tries per candidate (kept: {rate}), "
          f"{args.repro} reproduction runs")  # fmt: skip
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
