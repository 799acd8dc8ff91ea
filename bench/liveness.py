"""Benchmark: liveness under a one-link cut. Seeded runs of the reference elector without
pre-vote and leader stickiness (configs/detection/no-pre-vote-one-link.yaml) and of
safe.yaml under the same fault (configs/detection/safe-one-link.yaml); prints, per run,
the server-level elections after the first (the status probe's terms with a leader, as
a suite's `elections_max`/`elections_min` count them), acquisitions and the verdict,
then the median and range per configuration.

Needs root (network namespaces) or a Docker daemon. About (time limit + 8 s) a run, one
run at a time; seeds from 7000 up by default (not the seeds the configurations were
written against).

    python bench/liveness.py [--runs 5] [--first-seed 7000] [--time-limit 30]
        [--backend auto|local|docker] [--plain]

`--plain`: the elector configurations themselves under `--nemesis all` at the default
time limit (what a team gets without a hand-made configuration).
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness import options as opts
from harness.run.progress import LineProgress
from harness.run.runner import Runner
from harness.runconfig import load_run_config
from harness.suite.runner import history_figures

REPO = Path(__file__).resolve().parent.parent

ROWS = [
    ("no-pre-vote/one-link", "configs/detection/no-pre-vote-one-link.yaml", None),
    ("safe/one-link", "configs/detection/safe-one-link.yaml", None),
]
# Plain options (issue 14): each elector configuration with only `--nemesis all`, at the
# default time limit (the one-link and one-direction cuts are in the default mix).
PLAIN_ROWS = [
    ("no-pre-vote/all", "configs/reference/unsafe-no-pre-vote.yaml", ("all",)),
    ("safe/all", "configs/reference/safe.yaml", ("all",)),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=7000)
    parser.add_argument(
        "--time-limit", type=float, help="default: 30, or the run's own with --plain"
    )
    parser.add_argument("--plain", action="store_true", help="--nemesis all, default time limit")
    parser.add_argument("--backend", default="auto", choices=opts.backend_names())
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="liveness-"))
    summary = []
    try:
        for label, config, nemeses in PLAIN_ROWS if args.plain else ROWS:
            counts: list[int] = []
            limit = args.time_limit if args.time_limit or args.plain else 30.0
            for seed in range(args.first_seed, args.first_seed + args.runs):
                overrides = {
                    "seed": seed, "time_limit": limit, "backend": args.backend, "nemeses": nemeses
                }  # fmt: skip
                cfg = load_run_config(REPO / config, overrides)
                outcome = Runner(cfg, store=store, progress=LineProgress(io.StringIO())).execute()
                if outcome.interrupted:
                    raise SystemExit(f"interrupted during {label} seed {seed}")
                figures = None
                if outcome.run_dir is not None and outcome.verdict is not None:
                    figures = history_figures(Path(outcome.run_dir))
                if figures is None:
                    print(f"{label} seed {seed}: error: {outcome.error}", flush=True)
                    continue
                elections = figures[1]
                counts.append(elections)
                verdict = outcome.verdict or {}
                kinds = sorted({v["kind"] for v in verdict.get("violations", [])})
                acquisitions = verdict.get("stats", {}).get("acquisitions")
                print(
                    f"{label} seed {seed}: elections {elections}, acquisitions {acquisitions}, "
                    f"{'valid' if not kinds else ', '.join(kinds)}",
                    flush=True,
                )
            summary.append((label, counts))
    finally:
        shutil.rmtree(store, ignore_errors=True)
    print(f"\n{'configuration/fault':<24} {'runs':>4} {'elections median':>17} {'min-max':>9}")
    for label, counts in summary:
        if counts:
            spread = f"{min(counts)}-{max(counts)}"
            print(f"{label:<24} {len(counts):>4} {statistics.median(counts):>17g} {spread:>9}")
        else:
            print(f"{label:<24} {0:>4} {'-':>17} {'-':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
