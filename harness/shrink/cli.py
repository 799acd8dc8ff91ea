"""`harness shrink RUN_DIR`: from a run with violations to the smallest schedule that
still produces one, with a live display; also the entry `harness suite --shrink` uses.

Every candidate try is a full run through the Runner (in SHRINK_DIR/runs/), so each one
heals and tears down on every way out, and Ctrl-C during a try ends that try cleanly
before the search stops and writes the best schedule found so far.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.checker import VIOLATION_KINDS
from harness.exitcodes import EXIT_INVALID
from harness.nemesis.explicit import kinds_of
from harness.run.progress import RunStatus
from harness.run.runner import Runner
from harness.runconfig import ConfigError, RunConfig
from harness.shrink.output import write_outputs
from harness.shrink.search import Candidate, Shrinker, ShrinkResult, Status, TrialOutcome
from harness.shrink.source import load_run

EXIT_OK, EXIT_ERROR = 0, 2
DEFAULT_BUDGET_S = 20 * 60.0


def parse_budget(text: str) -> float:
    """'20m', '90s', '1h', '1h30m' or plain seconds -> seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    else:
        parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
        if not text or parts is None:
            raise argparse.ArgumentTypeError(
                f"expected a duration like 20m, 90s or 1h; got {text!r}"
            )
        h, m, s = (int(g or 0) for g in parts.groups())
        seconds = h * 3600 + m * 60 + s
    if not 0 < seconds <= 7 * 86_400:
        raise argparse.ArgumentTypeError(f"expected a duration from 1 s to 7 days; got {text!r}")
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def add_shrink_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--tries, --budget, --min-rate (with a prefix for `harness suite --shrink`)."""
    p.add_argument(
        f"--{prefix}tries", type=_positive_int, default=3, metavar="N",
        help="runs per candidate schedule (default 3)",
    )  # fmt: skip
    p.add_argument(
        f"--{prefix}budget", type=parse_budget, default=DEFAULT_BUDGET_S, metavar="TIME",
        help="wall-clock budget of the search, e.g. 20m (default), 90s, 1h",
    )  # fmt: skip
    p.add_argument(
        f"--{prefix}min-rate", type=_rate, default=None, metavar="R",
        help="keep a candidate when at least this fraction of its tries fail "
        "(default: at least one)",
    )  # fmt: skip


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "shrink",
        help="shrink a failing run's fault schedule to the smallest one that still fails",
        description="From RUN_DIR (a run with violations, also one inside a suite's "
        "directory), search for a smaller schedule that still produces a violation of the "
        "same kind: fewer faults, shorter faults, a shorter time limit and warm-up. Writes "
        "shrunk.yaml, shrink.json, report.html. Exit 0 written, 2 bad input or interrupted.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with violations")
    add_shrink_options(p)
    p.add_argument(
        "--kind", choices=VIOLATION_KINDS, default=None,
        help="the violation kind to keep (default: any kind the run found)",
    )  # fmt: skip
    p.add_argument("--store", default="store", help="where the shrink directory goes (store/)")
    p.add_argument("--backend", choices=("auto", "local", "docker"), default=None,
                   help="backend of the candidate runs (default: the run's own)")  # fmt: skip
    p.set_defaults(handler=main)


class _Display:
    """The live panel (a terminal) or one line per try (CI logs)."""

    def __init__(self, title: str, live: bool) -> None:
        self.title = title
        self.status = Status()
        self.run = RunStatus()
        self.run_phase = ""
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._last_line = ""
        if live:
            self._live = Live(self._render(), console=Console(stderr=True), refresh_per_second=4)
            self._live.start()

    def _render(self) -> Table:
        s = self.status
        table = Table(title=self.title, show_header=False, min_width=60)
        table.add_row("step", f"{s.step} ({s.phase})")
        table.add_row("change", s.change or "-")
        table.add_row("candidate", s.candidate or "-")
        table.add_row("try", f"{s.try_number}/{s.tries}" if s.tries else "-")
        table.add_row("failures so far", str(s.failures))
        table.add_row("run", self.run_phase or "-")
        table.add_row("best so far", s.best or "-")
        table.add_row("time left", f"{s.time_left_s / 60:.1f} min")
        return table

    def update(self, status: Status) -> None:
        with self._lock:
            self.status = status
            if self._live is not None:
                self._live.update(self._render())
                return
            if status.try_number == 0:
                return  # the step's first try prints its own line
            line = (
                f"shrink: step {status.step} ({status.phase}) {status.change}: "
                f"{status.candidate}; try {status.try_number}/{status.tries}, "
                f"failures {status.failures}; {status.time_left_s / 60:.1f} min left"
            )
            if line != self._last_line:
                print(line, file=sys.stderr, flush=True)
                self._last_line = line

    # Progress protocol for the candidate runs: only the phase shows, in the panel.
    def phase(self, status: RunStatus, name: str) -> None:
        self.run_phase = name
        if self._live is not None:
            self._live.update(self._render())

    def fault(self, status: RunStatus, text: str) -> None:
        pass

    def close(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None


def make_trial(
    base: RunConfig, wanted: set[str], runs_store: Path, display: _Display, origin: str
) -> Callable[[Candidate, str], TrialOutcome]:
    def trial(candidate: Candidate, label: str) -> TrialOutcome:
        cfg = copy.deepcopy(base)
        cfg.plans = list(candidate.plans)
        cfg.time_limit = candidate.time_limit
        cfg.nemeses = kinds_of(candidate.plans)
        cfg.origin = {"shrinking": origin, "candidate": label}
        began = time.monotonic()
        outcome = Runner(cfg, store=runs_store, progress=display).execute()
        violations = outcome.verdict["violations"] if outcome.verdict is not None else []
        kinds = sorted({v["kind"] for v in violations})
        return TrialOutcome(
            failed=outcome.exit_code == EXIT_INVALID and bool(wanted & set(kinds)),
            kinds=kinds,
            run_dir=str(outcome.run_dir) if outcome.run_dir is not None else None,
            error=outcome.error,
            wall_s=time.monotonic() - began,
            interrupted=outcome.interrupted,
        )

    return trial


def shrink_run(
    run_dir: Path,
    store: Path,
    *,
    tries: int = 3,
    budget_s: float = DEFAULT_BUDGET_S,
    min_rate: float | None = None,
    kind: str | None = None,
    backend: str | None = None,
    live: bool = False,
) -> tuple[ShrinkResult, Path, str]:
    """Shrink the run in `run_dir`; returns the result, the shrink directory and the
    summary. Raises ConfigError for a run that cannot be shrunk (no violation, etc.)."""
    source = load_run(run_dir)
    found = source.violation_kinds()
    if not found:
        raise ConfigError(f"{run_dir}: the run found no violation: nothing to shrink")
    if kind is not None and kind not in found:
        raise ConfigError(
            f"{run_dir}: the run found no {kind} violation (it found {', '.join(found)})"
        )
    wanted = [kind] if kind is not None else found
    cfg = source.cfg
    if backend is not None:
        cfg.backend = backend
    directory = (
        store.resolve() / f"shrink-{run_dir.resolve().name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    (directory / "runs").mkdir(parents=True, exist_ok=True)
    assert cfg.plans is not None
    start = Candidate(tuple(cfg.plans), cfg.time_limit)
    display = _Display(f"shrinking {run_dir.name}", live)
    shrinker = Shrinker(
        make_trial(cfg, set(wanted), directory / "runs", display, str(run_dir.resolve())),
        tries=tries,
        min_rate=min_rate,
        budget_s=budget_s,
        first_try_s=float(source.results.get("wall_s") or 0.0),
        on_status=display.update,
    )
    try:
        result = shrinker.shrink(start, str(run_dir.resolve()))
    finally:
        display.close()
    settings = {"tries": tries, "need": shrinker.need, "min_rate": min_rate, "budget_s": budget_s}
    text = write_outputs(directory, result, cfg, run_dir, wanted, settings)
    return result, directory, text


def shrink_failing_cases(
    verdicts: Sequence[Any], directory: Path, args: argparse.Namespace
) -> str | None:
    """`harness suite --shrink`: shrink the first violating run of every case whose
    expectations failed, into the suite's directory. Returns "SIGINT" when Ctrl-C stopped
    it (the suite then exits 2), else None."""
    for verdict in verdicts:
        if verdict.passed:
            continue
        name = verdict.case.name
        run = next((r for r in verdict.records if r.caught and r.run_dir), None)
        if run is None:
            print(f"shrink {name}: no run with a violation to shrink", file=sys.stderr)
            continue
        print(f"shrink {name}: from {run.run_dir}", file=sys.stderr, flush=True)
        try:
            result, _directory, text = shrink_run(
                Path(run.run_dir),
                directory,
                tries=args.shrink_tries,
                budget_s=args.shrink_budget,
                min_rate=args.shrink_min_rate,
                live=sys.stderr.isatty(),
            )
        except ConfigError as exc:
            print(f"shrink {name}: {exc}", file=sys.stderr)
            continue
        print(f"shrink {name}: {text}")
        if result.stopped == "interrupted":
            return "SIGINT"
    return None


def main(args: argparse.Namespace) -> int:
    try:
        result, _directory, text = shrink_run(
            Path(args.run_dir),
            Path(args.store),
            tries=args.tries,
            budget_s=args.budget,
            min_rate=args.min_rate,
            kind=args.kind,
            backend=args.backend,
            live=sys.stderr.isatty(),
        )
    except ConfigError as exc:
        print(f"harness shrink: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(text)
    return EXIT_ERROR if result.stopped == "interrupted" else EXIT_OK


__all__ = [
    "add_parser", "add_shrink_options", "main", "parse_budget", "shrink_failing_cases",
    "shrink_run",
]  # fmt: skip
