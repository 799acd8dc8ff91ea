"""`harness suite FILE`: run every case of a suite, print a table, write the index HTML,
save or compare a baseline.

Exit status: 0 every expectation held and nothing regressed; 1 an expectation failed or
a case regressed; 2 bad suite or baseline, a run that could not be carried out, or the
suite was interrupted (Ctrl-C, SIGTERM: after the current run is torn down).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from harness import options as opts
from harness.suite.compare import (
    BaselineError,
    CaseVerdict,
    Figures,
    judge,
    load_baseline,
    save_baseline,
    seconds,
)
from harness.suite.index import verdict_word, write_index
from harness.suite.model import Suite, SuiteError, load_suite, slug
from harness.suite.runner import CaseResult, RunRecord, run_suite

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def add_parser(sub: Any, option: Any) -> None:
    """Register `harness suite` on the main parser's subparsers; `option` wraps a parser
    of harness.options as an argparse type."""
    p = sub.add_parser(
        "suite",
        help="run a regression suite: cases of seeded runs judged against expectations",
        description="Run every case of a suite (YAML), print a table, write an index HTML "
        "linking every run's report, compare with a baseline. Exit 0 all expectations held "
        "and nothing regressed, 1 otherwise, 2 bad input, a run that could not run, or "
        "interrupted.",
    )
    p.add_argument("file", metavar="FILE", help="suite file (YAML; see suites/)")
    p.add_argument("--store", default="store", help="where the suite directory goes (store/)")
    p.add_argument("--baseline", metavar="DIR", help="compare with the baseline saved in DIR")
    p.add_argument(
        "--save-baseline", metavar="DIR", help="save this suite's figures as the baseline in DIR"
    )
    p.add_argument(
        "--backend", type=option(opts.parse_backend), help="override every case's backend"
    )
    p.add_argument(
        "--runs", type=_positive, metavar="N", help="override every case's seeds with 1..N"
    )
    p.add_argument("--verbose", action="store_true", help="print every run's phases and faults")
    p.set_defaults(handler=main)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected 1 to 1000, got {text!r}")
    return value


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _violations(f: Figures) -> str:
    text = f"{f.runs_caught}/{f.runs_judged}"
    if f.kinds:
        text += " " + ",".join(f.kinds)
    if f.runs_error:
        text += f" ({f.runs_error} error)"
    return text


def build_table(suite: Suite, verdicts: list[CaseVerdict], with_baseline: bool) -> Table:
    table = Table(title=f"suite {suite.name}", title_justify="left")
    table.add_column("case", overflow="fold")
    table.add_column("runs", justify="right")
    table.add_column("violations", overflow="fold")
    table.add_column("failover p50", justify="right")
    table.add_column("failover p99", justify="right")
    table.add_column("leaderless %", justify="right")
    table.add_column("elections", justify="right")
    table.add_column("expectations", overflow="fold")
    table.add_column("baseline", overflow="fold")
    for v in verdicts:
        f = v.figures
        expect = "ok" if not v.failures else "FAIL: " + "; ".join(v.failures)
        if not with_baseline:
            base = "-"
        elif v.baseline is None:
            base = "new (no baseline)"
        elif v.regressions:
            base = "REGRESSED: " + "; ".join(v.regressions)
        else:
            base = (
                f"ok (p99 was {seconds(v.baseline.failover_p99_ns)}, "
                f"leaderless {_pct(v.baseline.leaderless_pct)} %)"
            )
        style = None if v.passed else "red"
        table.add_row(
            v.case.name,
            str(f.runs),
            _violations(f),
            seconds(f.failover_p50_ns),
            seconds(f.failover_p99_ns),
            _pct(f.leaderless_pct),
            "-" if f.elections_max is None else str(f.elections_max),
            expect,
            base,
            style=style,
        )
    return table


def _describe_run(rec: RunRecord) -> str:
    if rec.interrupted:
        return f"interrupted ({rec.error})"
    if not rec.ok:
        return f"error: {rec.error or f'nothing to judge (verdict {rec.valid!r})'}"
    if rec.violation_kinds:
        return "caught: " + ", ".join(sorted(set(rec.violation_kinds)))
    return "valid"


def failure_message(v: CaseVerdict) -> str:
    """What failed and where the runs are: for the terminal and for pytest."""
    lines = [f"{v.case.name}: {verdict_word(v)}"]
    lines += [f"  - {failure}" for failure in v.failures]
    lines += [f"  - regressed: {r}" for r in v.regressions]
    lines.append("  runs:")
    lines += [f"    seed {r.seed}: {_describe_run(r)}: {r.run_dir or '-'}" for r in v.records]
    return "\n".join(lines)


def write_suite_json(directory: Path, suite: Suite, verdicts: list[CaseVerdict]) -> Path:
    data = {
        "suite": suite.name,
        "file": suite.path,
        "passed": all(v.passed for v in verdicts),
        "cases": [
            {
                "name": v.case.name,
                "passed": v.passed,
                "failures": v.failures,
                "regressions": v.regressions,
                "figures": v.figures.to_dict(),
                "baseline": v.baseline.to_dict() if v.baseline else None,
                "runs": [r.to_dict() for r in v.records],
            }
            for v in verdicts
        ],
    }
    path = directory / "suite.json"
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def suite_directory(store: Path, suite: Suite) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = store.resolve() / f"suite-{slug(suite.stem)}-{stamp}"
    directory, n = base, 1
    while directory.exists():  # two suites started in the same second
        n += 1
        directory = base.with_name(f"{base.name}-{n}")
    directory.mkdir(parents=True)
    return directory


def main(args: argparse.Namespace) -> int:
    from harness.run.progress import LineProgress

    err = sys.stderr
    try:
        suite = load_suite(args.file, overrides={"backend": args.backend}, runs=args.runs)
    except SuiteError as exc:
        print(f"harness suite: {exc}", file=err)
        return EXIT_ERROR
    baselines: dict[str, Figures | None] = {}
    if args.baseline is not None:
        if not Path(args.baseline).is_dir():
            print(f"harness suite: --baseline {args.baseline}: no such directory", file=err)
            return EXIT_ERROR
        try:
            baselines = {c.name: load_baseline(args.baseline, suite, c) for c in suite.cases}
        except BaselineError as exc:
            print(f"harness suite: {exc}", file=err)
            return EXIT_ERROR
    directory = suite_directory(Path(args.store), suite)
    total = sum(len(c.seeds) for c in suite.cases)
    print(f"suite {suite.name}: {len(suite.cases)} case(s), {total} run(s); {directory}", file=err)
    done = 0

    def on_run(case: Any, rec: RunRecord) -> None:
        nonlocal done
        done += 1
        print(
            f"[{done}/{total}] {case.name} seed {rec.seed}: {_describe_run(rec)} "
            f"({rec.wall_s:.1f} s)",
            file=err,
            flush=True,
        )

    results, interrupted = run_suite(
        suite,
        directory,
        progress=(lambda: LineProgress()) if args.verbose else None,
        on_run=on_run,
    )
    verdicts = _judge_all(suite, results, baselines)
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(build_table(suite, verdicts, args.baseline is not None))
    for v in verdicts:
        if not v.passed:
            print(failure_message(v))
    index = write_index(
        directory, suite, verdicts, baseline_dir=args.baseline, interrupted=interrupted
    )
    write_suite_json(directory, suite, verdicts)
    print(f"index: {index}")
    if interrupted:
        print(
            f"harness suite: interrupted by {interrupted}: stopped after tearing down the "
            f"current run; {len(suite.cases) - len(results)} case(s) not started, no baseline "
            "saved",
            file=err,
        )
        return EXIT_ERROR
    if args.save_baseline is not None:
        for v in verdicts:
            if v.errored:
                print(
                    f"harness suite: baseline not saved for {v.case.name}: a run could not run",
                    file=err,
                )
                continue
            print(f"baseline: {save_baseline(args.save_baseline, suite, v)}")
    if any(v.errored for v in verdicts):
        return EXIT_ERROR
    return EXIT_PASS if all(v.passed for v in verdicts) else EXIT_FAIL


def _judge_all(
    suite: Suite, results: list[CaseResult], baselines: dict[str, Figures | None]
) -> list[CaseVerdict]:
    return [judge(r.case, r.records, suite.tolerance, baselines.get(r.case.name)) for r in results]
