"""The `harness` command line: `harness check FILE`, `harness run ...`, `harness report RUN_DIR`.

Exit status: 0 valid, 1 invalid (violations found), 2 malformed input, bad usage, or a
verdict of "unknown".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from harness import options as opts
from harness.checker import Verdict, check_file
from harness.history import HistoryError

EXIT_VALID, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


def _non_negative_ns(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected nanoseconds as an integer, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected nanoseconds >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Fault-injection harness for leader-election systems.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="check a history file for split-brain and stale-leader violations",
        description="Check a history (JSON Lines, plain or gzip; format v1) and print "
        "the verdict. Exit 0 valid, 1 invalid, 2 malformed or unknown.",
    )
    check.add_argument("file", metavar="FILE", help="history file (.jsonl or .jsonl.gz)")
    check.add_argument("--json", action="store_true", help="print only the verdict as JSON")
    check.add_argument(
        "--tolerance",
        type=_non_negative_ns,
        default=0,
        metavar="NS",
        help="split-brain tolerance: overlaps up to NS nanoseconds are allowed (default 0)",
    )
    check.add_argument(
        "--stale-grace",
        type=_non_negative_ns,
        default=0,
        metavar="NS",
        help="stale-leader grace in nanoseconds (default 0)",
    )
    check.add_argument("--html", metavar="OUT", help="also write the HTML leadership report to OUT")
    check.set_defaults(handler=_cmd_check)

    report = sub.add_parser(
        "report",
        help="write a run directory's HTML leadership report (RUN_DIR/report.html)",
        description="Check RUN_DIR/history.jsonl and write RUN_DIR/report.html; prints its "
        "path. Exit 0 written, 2 missing or malformed input.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (see harness run)")
    report.set_defaults(handler=_cmd_report)

    run = sub.add_parser(
        "run",
        help="run a cluster under faults, check the history, write a run directory",
        description="Start a cluster of the target, run candidates and the fault schedule "
        "for the time limit, heal, check. Exit 0 valid, 1 violations found, 2 could not run.",
    )
    run.add_argument("--config", metavar="FILE", help="run configuration (YAML)")
    run.add_argument("--target", type=_option(opts.parse_target), help="reference, etcd, consul")
    run.add_argument(
        "--nemesis", dest="nemeses", type=_option(opts.parse_nemeses),
        help="faults, comma-separated: partition, pause, kill, clock (or none)",
    )  # fmt: skip
    run.add_argument("--backend", type=_option(opts.parse_backend), help="auto, local, docker")
    run.add_argument("--nodes", type=_option(opts.parse_nodes), help="cluster size (3, 5, 7)")
    run.add_argument(
        "--time-limit", dest="time_limit", type=_option(opts.parse_time_limit), metavar="SECONDS"
    )
    run.add_argument("--seed", type=_option(opts.parse_seed))
    run.add_argument("--store", default="store", help="where run directories go (default store/)")
    run.set_defaults(handler=_cmd_run)

    from harness.image.cli import add_parser as add_image_parser

    add_image_parser(sub)  # `harness image build|show`: handlers in harness/image/cli.py
    from harness.suite.cli import add_parser as add_suite_parser

    add_suite_parser(sub, _option)  # `harness suite FILE`: harness/suite/cli.py
    return parser


def _option(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse type from an options parser: its message, without repeating the flag."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except opts.OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    return convert


def format_ns(ns: int | None) -> str:
    """Nanoseconds for people: seconds when large, nanoseconds when tiny."""
    if ns is None:
        return "-"
    if abs(ns) >= 1_000_000:
        return f"{ns / 1e9:.3f} s"
    if abs(ns) >= 1_000:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns} ns"


def format_verdict(verdict: Verdict) -> str:
    valid = verdict["valid"]
    stats = verdict["stats"]
    word = {True: "VALID", False: "INVALID"}.get(valid, "UNKNOWN (nothing to judge)")
    lines = [f"{word}: {len(verdict['violations'])} violation(s)"]
    for v in verdict["violations"]:
        election = "" if v["election"] is None else f" in election {v['election']!r}"
        lines.append(
            f"- {v['kind']}{election}: processes {', '.join(map(str, v['processes']))}; "
            f"start {format_ns(v['start'])}, duration {format_ns(v['end'] - v['start'])}"
        )
        lines.append(f"    {v['detail']}")
    fo = stats["failover_ns"]
    unrecovered = f", {fo['unrecovered']} not followed by a new leader" if fo["unrecovered"] else ""
    lines.append(
        f"acquisitions {stats['acquisitions']}; leaderless {format_ns(stats['leaderless_ns'])} "
        f"of {format_ns(stats['span_ns'])}; failovers {fo['count']} (p50 {format_ns(fo['p50'])}, "
        f"p99 {format_ns(fo['p99'])}, max {format_ns(fo['max'])}){unrecovered}"
    )
    return "\n".join(lines)


def exit_status(verdict: Verdict) -> int:
    valid = verdict["valid"]
    if valid is True:
        return EXIT_VALID
    if valid is False:
        return EXIT_INVALID
    return EXIT_ERROR


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        verdict = check_file(
            args.file, tolerance_ns=args.tolerance, stale_grace_ns=args.stale_grace
        )
    except HistoryError as exc:  # MalformedHistory included: every problem with its line
        print(f"harness check: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.html:
        from harness.history import read_history
        from reports import write_report  # imported here: plain checks stay light

        try:
            write_report(read_history(args.file), verdict, args.html, source=args.file)
        except OSError as exc:
            print(f"harness check: cannot write {args.html}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        # stderr, so that --json still prints exactly the verdict on stdout
        print(f"report: {args.html}", file=sys.stderr)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(verdict) + b"\n")
        sys.stdout.flush()
    else:
        print(format_verdict(verdict))
    return exit_status(verdict)


def _cmd_run(args: argparse.Namespace) -> int:
    # Imported here so that `harness check` stays light and works without run extras.
    from harness.run.progress import LineProgress, LiveProgress
    from harness.run.runner import Runner
    from harness.runconfig import ConfigError, load_run_config

    overrides = {
        key: getattr(args, key)
        for key in ("target", "nemeses", "backend", "nodes", "time_limit", "seed")
    }
    try:
        cfg = load_run_config(args.config, overrides)
    except ConfigError as exc:
        print(f"harness run: {exc}", file=sys.stderr)
        return EXIT_ERROR
    runner = Runner(cfg, store=Path(args.store))
    title = f"{cfg.target} x{cfg.nodes}, nemesis {'+'.join(cfg.nemeses)}, seed {cfg.seed}"
    progress = LiveProgress(runner.status, title) if sys.stderr.isatty() else LineProgress()
    runner.progress = progress
    try:
        outcome = runner.execute()
    finally:
        progress.close()
    if outcome.verdict is not None:
        print(format_verdict(outcome.verdict))
    if outcome.error is not None:
        print(f"harness run: {outcome.error}", file=sys.stderr)
    if outcome.run_dir is not None:
        print(f"run directory: {outcome.run_dir}")
    return outcome.exit_code


def _cmd_report(args: argparse.Namespace) -> int:
    from reports import write_run_report

    try:
        path = write_run_report(args.run_dir)
    except HistoryError as exc:  # a missing directory or history; every malformed line
        print(f"harness report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"harness report: cannot write the report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(path)
    return EXIT_VALID


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args: Any = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
