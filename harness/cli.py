"""The `harness` command line: `harness check FILE`, `harness run ...`, `harness report RUN_DIR`,
`harness --version`.

Exit status: 0 valid, 1 invalid (violations found), 2 malformed input, bad usage, a
verdict of "unknown", or anything unexpected. One rule for every command (`main`): an
exception nobody expected prints one line saying what failed (the traceback only with
`--verbose`, and in the run's log when there is a run) and exits 2, because 1 must only
ever mean "a checked verdict with violations" to a CI job reading the status.

`harness check` builds only its own subcommand's parser and imports only the checker, so
that checking a history starts in a fraction of a second (the other commands' modules
bring docker, httpx, rich, jinja2, yaml...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from harness import options as opts
from harness.checker import Verdict, check_file
from harness.checker.units import duration, seconds
from harness.exitcodes import EXIT_ERROR, EXIT_INVALID, EXIT_VALID
from harness.history import HistoryError
from harness.oneline import error_line, one_line

MAX_TOLERANCE_NS = opts.MAX_TOLERANCE_NS


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (`harness run: --seed: ...`) and exit status 2."""

    def error(self, message: str) -> Any:  # argparse's signature: NoReturn
        self.exit(EXIT_ERROR, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def _non_negative_ns(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected nanoseconds as an integer, got {text!r}"
        ) from None
    # One hour: far beyond any election's timing (2**62, the time bound, is 146 years:
    # a tolerance that large would still make every split-brain valid).
    if not 0 <= value <= MAX_TOLERANCE_NS:
        shown = text if len(text) <= 30 else text[:27] + "..."
        raise argparse.ArgumentTypeError(
            f"expected 0 <= nanoseconds <= {MAX_TOLERANCE_NS} (one hour), got {shown!r}"
        )
    return value


def version() -> str:
    """The installed distribution's version (pyproject's), as `pip show` gives it."""
    import importlib.metadata  # only for --version: keeps `harness check` start-up short

    try:
        return importlib.metadata.version("leader-harness")
    except importlib.metadata.PackageNotFoundError:  # run from a bare checkout
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """`--version`: looks the version up only when asked (metadata imports are slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def build_parser(*, only_check: bool = False) -> argparse.ArgumentParser:
    """The command line; `only_check` leaves out every subcommand but `check` (and so
    their imports)."""
    parser = OneLineParser(
        prog="harness",
        description="Fault-injection harness for leader-election systems.",
    )
    parser.add_argument("--version", action=_VersionAction)
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
    if only_check:
        _add_verbose(sub)
        return parser

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
    run.add_argument(
        "--target", type=_option(opts.parse_target), help=", ".join(opts.target_names())
    )
    run.add_argument(
        "--nemesis", dest="nemeses", type=_option(opts.parse_nemeses),
        help="faults, comma-separated: " + ", ".join(opts.nemesis_names()[2:])
        + "; or all (every fault the target supports), or none",
    )  # fmt: skip
    run.add_argument(
        "--backend", type=_option(opts.parse_backend), help=", ".join(opts.backend_names())
    )
    run.add_argument("--hosts", metavar="FILE", help="the ssh backend's inventory (hosts.yaml)")
    run.add_argument("--nodes", type=_option(opts.parse_nodes), help="cluster size (3, 5, 7)")
    run.add_argument(
        "--time-limit", dest="time_limit", type=_option(opts.parse_time_limit), metavar="SECONDS",
        help="seconds of workload and faults (default 30, or longer to fit three of the "
        "target's long faults)",
    )  # fmt: skip
    run.add_argument("--seed", type=_option(opts.parse_seed))
    run.add_argument("--store", default="store", help="where run directories go (default store/)")
    run.add_argument(
        "--replay", metavar="RUN_DIR",
        help="re-run RUN_DIR's configuration with the schedule it carried out "
        "(options given here still apply, but not --nemesis)",
    )  # fmt: skip
    run.set_defaults(handler=_cmd_run)

    from harness.backends.ssh_check import add_parser as add_hosts_parser

    add_hosts_parser(sub)  # `harness hosts check FILE`: harness/backends/ssh_check.py

    init = sub.add_parser(
        "init",
        help="write a starter run configuration, suite and test into your repository",
        description="Write leader-harness/run.yaml, leader-harness/suite.yaml and "
        "tests/test_leader_harness.py under DIR; never overwrites a file.",
    )
    init.add_argument("dir", nargs="?", default=".", help="your repository (default .)")
    init.set_defaults(handler=_cmd_init)

    from harness.image.cli import add_parser as add_image_parser

    add_image_parser(sub)  # `harness image build|show`: handlers in harness/image/cli.py
    from harness.suite.cli import add_parser as add_suite_parser

    add_suite_parser(sub, _option)  # `harness suite FILE`: harness/suite/cli.py
    from harness.shrink.cli import add_parser as add_shrink_parser

    add_shrink_parser(sub)  # `harness shrink RUN_DIR`: harness/shrink/cli.py
    _add_verbose(sub)
    return parser


def _add_verbose(sub: Any) -> None:
    """`--verbose` on every command that lacks one (suite has its own): with it, an
    unexpected error also prints its traceback."""
    for parser in sub.choices.values():
        if not any("--verbose" in a.option_strings for a in parser._actions):
            parser.add_argument(
                "--verbose", action="store_true", help="print a traceback on an internal error"
            )
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_verbose(action)


def _option(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse type from an options parser: its message, without repeating the flag."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except opts.OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    return convert


def printable(text: str) -> str:
    """`text` with terminal control characters (ESC, CR, BEL, C1...) shown as escapes:
    names in a history are not trusted, and must not drive the terminal."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def format_verdict(verdict: Verdict) -> str:
    valid = verdict["valid"]
    stats = verdict["stats"]
    word = (
        "VALID" if valid is True else "INVALID" if valid is False else "UNKNOWN (nothing to judge)"
    )
    lines = [f"{word}: {len(verdict['violations'])} violation(s)"]
    for v in verdict["violations"]:
        election = "" if v["election"] is None else f" in election {v['election']!r}"
        lines.append(
            f"- {v['kind']}{election}: processes {', '.join(map(str, v['processes']))}; "
            f"start {seconds(v['start'])}, duration {duration(v['end'] - v['start'])}"
        )
        lines.append(f"    {v['detail']}")
    lines.append(
        f"acquisitions {stats['acquisitions']}; leaderless {duration(stats['leaderless_ns'])} "
        f"of {duration(stats['span_ns'])}; {format_failovers(stats['failover_ns'])}"
    )
    return "\n".join(lines)


def format_failovers(fo: Mapping[str, Any]) -> str:
    """Failover figures; failovers whose successor acquired before the old leader let go
    are overlaps (their latency is counted as 0 ns), and are named so."""
    count, overlapped = fo["count"], fo.get("overlapped", 0)
    if count and overlapped == count:
        text = (
            f"failovers {count}, all overlaps (the successor acquired before the old leader let go)"
        )
    else:
        text = (
            f"failovers {count} (p50 {duration(fo['p50'])}, p99 {duration(fo['p99'])}, "
            f"max {duration(fo['max'])})"
        )
        if overlapped:
            text += (
                f", {overlapped} of them overlaps (the successor acquired before the old "
                "leader let go; counted as 0 ns)"
            )
    if fo["unrecovered"]:
        text += f", {fo['unrecovered']} not followed by a new leader"
    return text


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
        print(printable(f"harness check: {exc}"), file=sys.stderr)
        return EXIT_ERROR
    if args.html:
        from harness.history import read_history
        from harness.reports import write_report  # imported here: plain checks stay light

        try:
            write_report(read_history(args.file), verdict, args.html, source=args.file)
        except OSError as exc:
            print(printable(f"harness check: cannot write {args.html}: {exc}"), file=sys.stderr)
            return EXIT_ERROR
        # stderr, so that --json still prints exactly the verdict on stdout
        print(printable(f"report: {args.html}"), file=sys.stderr)
    if args.json:  # JSON escapes control characters itself
        sys.stdout.buffer.write(orjson.dumps(verdict) + b"\n")
        sys.stdout.flush()
    else:
        print(printable(format_verdict(verdict)))
    return exit_status(verdict)


def _cmd_run(args: argparse.Namespace) -> int:
    # Imported here so that `harness check` stays light and works without run extras.
    from harness.run.progress import LineProgress, LiveProgress
    from harness.run.runner import Runner
    from harness.runconfig import ConfigError, load_run_config

    overrides = {
        key: getattr(args, key)
        for key in ("target", "nemeses", "backend", "hosts", "nodes", "time_limit", "seed")
    }
    try:
        if args.replay is not None:
            cfg = _replay_config(args, overrides)
        else:
            cfg = load_run_config(args.config, overrides)
    except ConfigError as exc:
        error_line("harness run", f"{exc}")
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
        error_line("harness run", f"{outcome.error}")
    if outcome.run_dir is not None:
        print(f"run directory: {outcome.run_dir}")
    return outcome.exit_code


def _replay_config(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    """RUN_DIR's configuration with its carried-out schedule, then the options given."""
    from harness.runconfig import ConfigError
    from harness.shrink.source import load_run

    if args.config is not None:
        raise ConfigError("--replay takes the run's own configuration: give no --config")
    if overrides.get("nemeses") is not None:
        raise ConfigError("--replay carries out the run's own schedule: give no --nemesis")
    cfg = load_run(args.replay).cfg
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.origin = {"replay_of": str(Path(args.replay).resolve())}
    return cfg


def _cmd_init(args: argparse.Namespace) -> int:
    from harness.init import InitError, init

    try:
        written = init(Path(args.dir))
    except InitError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    for path in written:
        print(f"wrote {path}")
    print("next: pytest --target=etcd --nemesis=partition")
    return EXIT_VALID


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.reports import write_run_report

    try:
        path = write_run_report(args.run_dir)
    except HistoryError as exc:  # a missing directory or history; every malformed line
        error_line("harness report", f"{exc}")
        return EXIT_ERROR
    except OSError as exc:
        error_line("harness report", f"cannot write the report: {exc}")
        return EXIT_ERROR
    print(path)
    return EXIT_VALID


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["suite", "merge"]:
        # `harness suite merge DIR...` shares its first word with `harness suite FILE`
        # (a suite file called "merge" is still reachable as ./merge).
        from harness.suite.cli import merge_main

        return merge_main(argv[2:])
    parser = build_parser(only_check=argv[:1] == ["check"])
    args: Any = parser.parse_args(argv)
    return run_handler(args)


def run_handler(args: Any) -> int:
    """The top-level rule: a handler's own status, or 2 with one line for anything else."""
    what = f"harness {args.command}"
    if getattr(args, "image_command", None):
        what += f" {args.image_command}"
    try:
        status = int(args.handler(args))
    except KeyboardInterrupt:
        print(f"{what}: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        # (A run's own handler has already written the traceback to its harness.log.)
        print(f"{what}: internal error: {describe_exception(exc)}", end="", file=sys.stderr)
        if getattr(args, "verbose", False):
            print(file=sys.stderr)
            import traceback  # only here: it is slow to import (textwrap...)

            traceback.print_exc(file=sys.stderr)
        else:
            print(" (--verbose for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    # A handler's status is one of 0, 1, 2: anything else would be read as something else.
    return status if status in (EXIT_VALID, EXIT_INVALID, EXIT_ERROR) else EXIT_ERROR


def describe_exception(exc: BaseException) -> str:
    """`TypeName: first line of the message`, cut short and without control characters."""
    text = str(exc) if not isinstance(exc, RecursionError) else "input nested too deeply"
    return one_line(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
