"""Benchmark: a suite's wall time one run at a time vs side by side (`harness suite
--jobs N`), whether the verdicts stay the same, and where runs start to slow each other.

For each N it runs `harness suite SUITE --jobs N` once and prints: wall time and the
speed-up over the first N given; per-case verdict, and whether it equals the first N's;
failover p50/p99 pooled over every run's latencies (all cases), the runs' median
leaderless %, and each case's figures; CPU seconds per run (the suite's whole process
tree) and the peak memory of the tree per running run; the machine's load average before
and after (other work on the machine slows runs too: read the figures with it).

    python bench/suite_jobs.py [--suite suites/reference.yaml] [--runs 2]
        [--jobs 1,3] [--backend local] [--store DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent


def tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[pid] = int(line.split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(p, 0) for p in tree)


def run_suite(args: argparse.Namespace, jobs: int, store: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "harness.cli", "suite", args.suite, "--jobs", str(jobs),
        "--runs", str(args.runs), "--store", str(store), "--backend", args.backend,
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(1.0):
            peak = max(peak, tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    dirs = sorted(store.glob("suite-*"), key=lambda p: p.stat().st_mtime)
    if not dirs or not (dirs[-1] / "suite.json").is_file():
        sys.exit(f"jobs {jobs}: no suite.json (exit {proc.returncode}):\n{out.decode()[-2000:]}")
    data = orjson.loads((dirs[-1] / "suite.json").read_bytes())
    runs = [r for c in data["cases"] for r in c["runs"]]
    latencies = sorted(x for r in runs for x in (r.get("failover_latencies_ns") or []))
    leaderless = [
        100 * r["leaderless_ns"] / r["span_ns"] for r in runs if r.get("span_ns") and r["span_ns"]
    ]
    return {
        "jobs": jobs,
        "exit": proc.returncode,
        "wall_s": wall,
        "cpu_s": cpu,
        "runs": len(runs),
        "errors": sum(1 for r in runs if r.get("error")),
        "verdicts": {c["name"]: c["passed"] for c in data["cases"]},
        "run_verdicts": {
            (c["name"], r["seed"]): (r.get("valid"), bool(r.get("violation_kinds")))
            for c in data["cases"]
            for r in c["runs"]
        },
        "p50": _pct(latencies, 50),
        "p99": _pct(latencies, 99),
        "failovers": len(latencies),
        "leaderless_median": statistics.median(leaderless) if leaderless else None,
        "peak_rss_mb": peak / 1024,
        "load": (load_before, os.getloadavg()[0]),
        "dir": str(dirs[-1]),
        "cases": data["cases"],
    }


def _pct(values: list[int], p: float) -> float | None:
    if not values:
        return None
    k = max(0, min(len(values) - 1, round(p / 100 * len(values) + 0.5) - 1))
    return values[k] / 1e9


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="suites/reference.yaml")
    ap.add_argument("--runs", type=int, default=2, help="seeds per case (default 2)")
    ap.add_argument("--jobs", default="1,3", help="comma-separated N values (default 1,3)")
    ap.add_argument("--backend", default="local")
    ap.add_argument("--store", help="where the suite directories go (default: a temp dir)")
    args = ap.parse_args()
    store = Path(args.store or tempfile.mkdtemp(prefix="suite-jobs-"))
    print(f"suite {args.suite}, --runs {args.runs}, backend {args.backend}, cores "
          f"{len(os.sched_getaffinity(0))}; store {store}", flush=True)  # fmt: skip
    results = []
    for jobs in [int(j) for j in args.jobs.split(",")]:
        r = run_suite(args, jobs, store / f"jobs{jobs}")
        results.append(r)
        first = results[0]
        same_case = r["verdicts"] == first["verdicts"]
        differ = [k for k, v in r["run_verdicts"].items() if first["run_verdicts"].get(k) != v]
        print(
            f"jobs {jobs:2d}: wall {r['wall_s']:7.1f} s (x{first['wall_s'] / r['wall_s']:.2f}), "
            f"exit {r['exit']}, {r['runs']} runs, {r['errors']} errors; cases passed "
            f"{sum(r['verdicts'].values())}/{len(r['verdicts'])}, same as jobs "
            f"{first['jobs']}: {'yes' if same_case else 'NO'}; runs judged differently: "
            f"{len(differ)}; failover p50 {_s(r['p50'])} s p99 {_s(r['p99'])} s "
            f"(n={r['failovers']}), leaderless median {r['leaderless_median'] or 0:.1f} %; "
            f"CPU {r['cpu_s'] / max(1, r['runs']):.1f} s/run, peak memory "
            f"{r['peak_rss_mb'] / jobs:.0f} MB/run; load {r['load'][0]:.1f} -> "
            f"{r['load'][1]:.1f}; {r['dir']}",
            flush=True,
        )
        for c in r["cases"]:
            f = c["figures"]
            p50, p99 = f["failover_p50_ns"], f["failover_p99_ns"]
            print(
                f"    {c['name']:28s} {'PASS' if c['passed'] else 'FAIL'} caught "
                f"{f['runs_caught']}/{f['runs']} failover p50 {_s(p50 and p50 / 1e9)} "
                f"p99 {_s(p99 and p99 / 1e9)} s (n={f['failover_count']}) leaderless "
                f"{f['leaderless_pct'] or 0:.1f} % elections<= {f['elections_max']}"
            )
        for name, passed in r["verdicts"].items():
            if passed != first["verdicts"].get(name):
                print(f"    {name}: {'PASS' if passed else 'FAIL'} (jobs {first['jobs']}: "
                      f"{'PASS' if first['verdicts'].get(name) else 'FAIL'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
