"""`harness suite FILE`: run every case of a suite (`--jobs N`: runs side by side;
`--shard K/N`: this machine's share), print a table, write the index HTML, save or compare
a baseline; `harness suite merge DIR...`: judge the shards' directories as one suite.

Exit status: 0 every expectation held and nothing regressed; 1 an expectation failed or
a case regressed; 2 bad suite or baseline, a run that could not be carried out, or the
suite was interrupted (Ctrl-C, SIGTERM: after the running runs are torn down). A shard
exits 0 when every run of its share was carried out: the verdict is merge's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from harness import options as opts
from harness.exitcodes import EXIT_ERROR, EXIT_INVALID, EXIT_VALID
from harness.oneline import error_line
from harness.run.progress import LineProgress
from harness.run.store import StoreError, check_store
from harness.safefile import write_atomic
from harness.suite.compare import (
    BaselineError,
    CaseVerdict,
    Figures,
    judge,
    load_baselines,
    save_baseline,
    seconds,
)
from harness.suite.index import verdict_word, write_index
from harness.suite.model import Suite, SuiteError, load_suite, slug
from harness.suite.runner import CaseResult, RunRecord, run_suite


def add_parser(sub: Any, option: Any) -> None:
    """Register `harness suite` on the main parser's subparsers; `option` wraps a parser
    of harness.options as an argparse type."""
    p = sub.add_parser(
        "suite",
        help="run a regression suite: cases of seeded runs judged against expectations",
        description="Run every case of a suite (YAML), print a table, write an index HTML "
        "linking every run's report, compare with a baseline. Exit 0 all expectations held "
        "and nothing regressed, 1 otherwise, 2 bad input, a run that could not run, or "
        "interrupted. `harness suite merge DIR...` combines the directories of --shard runs "
        "(see `harness suite merge --help`).",
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
    p.add_argument("--hosts", metavar="FILE", help="the ssh backend's inventory (hosts.yaml)")
    p.add_argument(
        "--runs", type=_positive, metavar="N", help="override every case's seeds with 1..N"
    )
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="runs side by side on this machine (each its own network and nodes); auto: "
        "as many as the cores and memory allow (default 1)",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        metavar="K/N",
        help="run only shard K of N (a deterministic share of the runs, balanced by "
        "expected duration); combine the shards with `harness suite merge`",
    )
    p.add_argument("--verbose", action="store_true", help="print every run's phases and faults")
    p.add_argument(
        "--shrink", action="store_true",
        help="shrink a violating run of every failing case (harness shrink; options below)",
    )  # fmt: skip
    from harness.shrink.cli import add_shrink_options

    add_shrink_options(p, prefix="shrink-")
    p.set_defaults(handler=main)


def add_merge_parser() -> argparse.ArgumentParser:
    """`harness suite merge DIR...` (dispatched by harness/cli.py before `suite FILE`)."""
    p = argparse.ArgumentParser(
        prog="harness suite merge",
        description="Combine the directories of a suite's shards (harness suite --shard K/N, "
        "pytest --suite-shard K/N) into one suite.json and index.html, judged as one run "
        "of the whole suite. Exit 0 all expectations held and nothing regressed, 1 "
        "otherwise, 2 bad input (a shard missing or twice, a run that could not run).",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="every shard's suite directory")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where the merged suite.json and index.html go (default: a new "
        "suite-<name>-merged-<time> directory next to the first DIR)",
    )
    p.add_argument("--suite", metavar="FILE", help="the suite file, if not where suite.json says")
    p.add_argument("--baseline", metavar="DIR", help="compare with the baseline saved in DIR")
    p.add_argument(
        "--save-baseline", metavar="DIR", help="save the suite's figures as the baseline in DIR"
    )
    return p


def _jobs(text: str) -> int | str:
    from harness.suite.jobs import parse_jobs

    try:
        return parse_jobs(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard(text: str) -> Any:
    from harness.suite.shard import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


def write_suite_json(
    directory: Path,
    suite: Suite,
    verdicts: list[CaseVerdict],
    *,
    shard: Any = None,
    overrides: dict[str, Any] | None = None,
    interrupted: str | None = None,
) -> Path:
    """suite.json: the verdicts and every run's record; with what a merge needs to check
    that directories are shards of one suite (shard, overrides, where it was written)."""
    data = {
        "suite": suite.name,
        "file": suite.path,
        "passed": all(v.passed for v in verdicts) and not interrupted,
        "shard": str(shard) if shard is not None else None,
        "overrides": overrides or {},
        "directory": str(directory.resolve()),
        "interrupted": interrupted,
        "cases": [
            {
                "name": v.case.name,
                "number": v.case.number,
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
    write_atomic(path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
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
    from harness.suite.jobs import RunLines, auto_jobs
    from harness.suite.shard import expected_seconds, shard_runs

    err = sys.stderr
    overrides: dict[str, Any] = {"backend": args.backend, "hosts": args.hosts}
    try:
        suite = load_suite(args.file, overrides=overrides, runs=args.runs)
    except SuiteError as exc:
        error_line("harness suite", f"{exc}")
        return EXIT_ERROR
    if args.shard is not None and (args.baseline or args.save_baseline):
        error_line(
            "harness suite",
            "--baseline and --save-baseline go to `harness suite merge`, which judges the "
            "whole suite; a shard holds only part of each case's runs",
        )
        return EXIT_ERROR
    try:
        baselines = load_baselines(suite, args.baseline)
    except BaselineError as exc:
        error_line("harness suite", f"{exc}")
        return EXIT_ERROR
    try:
        store = check_store(Path(args.store))
    except StoreError as exc:
        error_line("harness suite", f"{exc}")
        return EXIT_ERROR
    jobs = auto_jobs() if args.jobs == "auto" else int(args.jobs)
    only = shard_runs(suite, args.shard) if args.shard is not None else None
    directory = suite_directory(store, suite)
    total = len(only) if only is not None else sum(len(c.seeds) for c in suite.cases)
    part = ""
    if args.shard is not None:
        expected = expected_seconds(suite, only or set())
        part = f" (shard {args.shard}: expected {expected / 60:.1f} min of runs)"
    print(
        f"suite {suite.name}: {len(suite.cases)} case(s), {total} run(s){part}, "
        f"{jobs} at a time; {directory}",
        file=err,
    )
    lines = RunLines() if jobs > 1 else None
    done = 0

    def say(text: str) -> None:
        if lines is not None:
            lines.print(text)
        else:
            print(text, file=err, flush=True)

    def on_run(case: Any, rec: RunRecord) -> None:
        nonlocal done
        done += 1
        say(
            f"[{done}/{total}] {case.name} seed {rec.seed}: {_describe_run(rec)} "
            f"({rec.wall_s:.1f} s)"
        )

    def progress(case: Any, seed: int) -> Any:
        if lines is not None:
            sink = lines.add(f"{case.name} seed {seed}")
            sink.verbose = args.verbose
            return sink
        return LineProgress() if args.verbose else LineProgress(io.StringIO())

    with lines if lines is not None else contextlib.nullcontext():
        results, interrupted = run_suite(
            suite, directory, progress=progress, on_run=on_run, jobs=jobs, only=only
        )
    if interrupted:
        ran = sum(len(r.records) for r in results)
        print(
            f"harness suite: interrupted by {interrupted}: stopped after tearing down the "
            f"running run(s); {total - ran} run(s) not carried out, no baseline saved",
            file=err,
        )
    return finish(
        suite,
        results,
        directory,
        baselines=baselines,
        baseline_dir=args.baseline,
        save_baseline_dir=None if interrupted else args.save_baseline,
        interrupted=interrupted,
        shard=args.shard,
        overrides={"backend": args.backend, "runs": args.runs},
        shrink=args if args.shrink else None,
    )


def finish(
    suite: Suite,
    results: list[CaseResult],
    directory: Path,
    *,
    baselines: dict[str, Figures | None],
    baseline_dir: str | None,
    save_baseline_dir: str | None,
    interrupted: str | None = None,
    shard: Any = None,
    overrides: dict[str, Any] | None = None,
    shrink: Any = None,  # `--shrink`'s options: shrink every failing case afterwards
) -> int:
    """Judge, print the table and failures, write index.html and suite.json, save the
    baseline; the exit status (a shard's: 2 or 0, the verdict being merge's)."""
    err = sys.stderr
    verdicts = _judge_all(suite, results, baselines)
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = build_table(suite, verdicts, baseline_dir is not None)
    if shard is not None:
        table.title = f"suite {suite.name}, shard {shard} (partial: `harness suite merge` judges)"
    console.print(table)
    for v in verdicts:
        if not v.passed and shard is None:
            print(failure_message(v))
    index = write_index(
        directory, suite, verdicts, baseline_dir=baseline_dir, interrupted=interrupted
    )
    write_suite_json(
        directory, suite, verdicts, shard=shard, overrides=overrides, interrupted=interrupted
    )
    print(f"index: {index}")
    if shrink is not None and not interrupted and shard is None:
        from harness.shrink.cli import shrink_failing_cases

        interrupted = shrink_failing_cases(verdicts, directory, shrink)
    if interrupted:
        return EXIT_ERROR
    if save_baseline_dir is not None:
        for v in verdicts:
            if v.errored:
                print(
                    f"harness suite: baseline not saved for {v.case.name}: a run could not run",
                    file=err,
                )
                continue
            print(f"baseline: {save_baseline(save_baseline_dir, suite, v)}")
    if any(v.errored for v in verdicts):
        for v in verdicts:
            if v.errored and shard is not None:
                print(failure_message(v))
        return EXIT_ERROR
    if shard is not None:
        return EXIT_VALID
    return EXIT_VALID if all(v.passed for v in verdicts) else EXIT_INVALID


def merge_main(argv: list[str]) -> int:
    """`harness suite merge DIR...`."""
    from harness.suite.shard import MergeError, check_shards, merged_records, read_shard_dir

    args = add_merge_parser().parse_args(argv)
    err = sys.stderr
    try:
        dirs = [read_shard_dir(Path(d)) for d in args.dirs]
        check_shards(dirs)
        file = args.suite or dirs[0].file
        if not Path(file).is_file():
            raise MergeError(
                f"suite file {file} (from {dirs[0].path / 'suite.json'}) not found here: "
                "give --suite FILE"
            )
        overrides = dict(dirs[0].data.get("overrides") or {})
        runs = overrides.pop("runs", None)
        suite = load_suite(file, overrides=overrides, runs=runs)
        records = merged_records(suite, dirs)
        baselines = load_baselines(suite, args.baseline)
    except (MergeError, SuiteError, BaselineError) as exc:
        error_line("harness suite merge", f"{exc}")
        return EXIT_ERROR
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = dirs[0].path.resolve().parent / f"suite-{slug(suite.stem)}-merged-{stamp}"
        out.mkdir(parents=True, exist_ok=False)
    print(
        f"suite {suite.name}: merged {len(dirs)} shard(s), "
        f"{sum(len(r) for r in records.values())} run(s); {out}",
        file=err,
    )
    results = [CaseResult(c, records[c.name]) for c in suite.cases]
    return finish(
        suite,
        results,
        out,
        baselines=baselines,
        baseline_dir=args.baseline,
        save_baseline_dir=args.save_baseline,
        overrides={**overrides, "runs": runs},
    )


def _judge_all(
    suite: Suite, results: list[CaseResult], baselines: dict[str, Figures | None]
) -> list[CaseVerdict]:
    return [judge(r.case, r.records, suite.tolerance, baselines.get(r.case.name)) for r in results]
