"""Running a suite's cases: each case's seeded runs through the Runner, one at a time or
(`jobs` > 1) side by side in child processes (harness/suite/jobs.py).

A run becomes a `RunRecord` (its figures, read from the outcome's verdict and, for the
pooled failover latencies, from the run's merged history). A teardown signal (Ctrl-C,
SIGTERM, SIGHUP, SIGQUIT) between runs sets a flag; during a run the Runner itself catches
it, tears everything down and returns an outcome marked `interrupted`. Either way the
suite stops after that run (with jobs, after every running run is torn down). `only`
restricts a suite to some of its runs (a shard: harness/suite/shard.py).
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from harness.run import signals as run_signals
from harness.run.progress import LineProgress, Progress
from harness.run.runner import EXIT_ERROR, Runner, RunOutcome
from harness.runconfig import RunConfig
from harness.suite.model import Case, Suite, slug

if TYPE_CHECKING:
    from harness.suite.jobs import Children


@dataclass
class RunRecord:
    """One seeded run of a case, as the suite keeps it (and as suite.json stores it)."""

    seed: int
    exit_code: int
    run_dir: str | None = None
    error: str | None = None
    valid: bool | str | None = None  # the verdict's: True, False, "unknown"; None: none
    violation_kinds: list[str] = field(default_factory=list)  # one entry per violation
    acquisitions: int | None = None
    leaderless_ns: int | None = None
    span_ns: int | None = None
    failover_p50_ns: int | None = None
    failover_p99_ns: int | None = None
    failover_latencies_ns: list[int] | None = None  # None: the history was not readable
    elections: int | None = None  # leader terms the probe saw after the first
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """The run was carried out and judged (valid or not)."""
        return self.error is None and self.valid in (True, False) and not self.interrupted

    @property
    def caught(self) -> bool:
        return self.ok and bool(self.violation_kinds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class CaseResult:
    case: Case
    records: list[RunRecord] = field(default_factory=list)
    interrupted: bool = False


def history_figures(run_dir: Path) -> tuple[list[int], int] | None:
    """Every failover latency (ns) of a run, and the number of server-level elections the
    status probe saw after the first leader (terms that had a leader, minus one), from
    its merged history; None if unreadable."""
    from harness.checker.stats import failover_latencies
    from harness.checker.walk import walk
    from harness.history import HistoryError, read_history

    path = run_dir / "history.jsonl"
    if not path.is_file():
        return None
    try:
        events = read_history(path)
        w = walk(events, str(path))
    except (HistoryError, OSError):
        return None
    if w.problems:
        return None
    out: list[int] = []
    for election in sorted(set(w.beliefs) | set(w.acquisitions)):
        out.extend(failover_latencies(w, election)[0])
    terms = {
        e.value.get("term")
        for e in events
        if e.f == "status"
        and e.type == "ok"
        and isinstance(e.value, dict)
        and e.value.get("leader")
    }
    return sorted(out), max(0, len(terms) - 1)


def record_of(seed: int, outcome: RunOutcome, wall_s: float) -> RunRecord:
    rec = RunRecord(
        seed=seed,
        exit_code=outcome.exit_code,
        run_dir=str(outcome.run_dir) if outcome.run_dir is not None else None,
        error=outcome.error,
        wall_s=round(wall_s, 3),
        interrupted=outcome.interrupted,
    )
    verdict = outcome.verdict
    if verdict is not None:
        stats = verdict.get("stats", {})
        failover = stats.get("failover_ns", {})
        rec.valid = verdict.get("valid")
        rec.violation_kinds = [v["kind"] for v in verdict.get("violations", [])]
        rec.acquisitions = stats.get("acquisitions")
        rec.leaderless_ns = stats.get("leaderless_ns")
        rec.span_ns = stats.get("span_ns")
        rec.failover_p50_ns = failover.get("p50")
        rec.failover_p99_ns = failover.get("p99")
    if outcome.run_dir is not None and verdict is not None:
        figures = history_figures(Path(outcome.run_dir))
        if figures is not None:
            rec.failover_latencies_ns, rec.elections = figures
    return rec


def execute_run(
    cfg: RunConfig, store: Path, progress: Progress, children: Children | None = None
) -> RunOutcome:
    """One run; with `children`, in a child process of its own, registered there so that a
    stop signal reaches it. A module-level seam: tests replace it to judge suites without
    clusters."""
    if children is not None:
        from harness.suite.jobs import run_in_child

        return run_in_child(cfg, store, progress, children)
    return Runner(cfg, store=store, progress=progress).execute()


class _Stop:
    """Remembers a teardown signal that arrived between runs (no cluster to tear down)."""

    def __init__(self) -> None:
        self.signal: str | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[_Stop]:
    """Between runs, a teardown signal (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT) is remembered;
    during a run the Runner's own handlers turn it into an orderly teardown."""
    stop = _Stop()

    def handler(signum: int, frame: FrameType | None) -> None:
        # Not an exception: the suite finishes its bookkeeping and stops before the next run.
        stop.signal = signal.Signals(signum).name

    with run_signals.handled(handler):
        yield stop


RunCallback = Callable[[Case, RunRecord], None]
ProgressFactory = Callable[[Case, int], Progress]  # (case, seed) -> the run's progress
RunKey = tuple[int, int]  # (case number, seed)


def run_case(
    case: Case,
    store: Path,
    *,
    progress: ProgressFactory | None = None,
    on_run: RunCallback | None = None,
    stop: _Stop | None = None,
) -> CaseResult:
    """Every seeded run of `case`, in order; stops early when interrupted."""
    result = CaseResult(case)
    case_store = store / slug(case.name)
    case_store.mkdir(parents=True, exist_ok=True)
    for seed in case.seeds:
        if stop is not None and stop.signal is not None:
            result.interrupted = True
            break
        cfg = replace(case.run, seed=seed)
        started = time.monotonic()
        sink = progress(case, seed) if progress is not None else LineProgress(io.StringIO())
        try:
            outcome = execute_run(cfg, case_store, sink)
        finally:
            sink.close()
        rec = record_of(seed, outcome, time.monotonic() - started)
        result.records.append(rec)
        if on_run is not None:
            on_run(case, rec)
        if outcome.interrupted:
            result.interrupted = True
            break
    _drop_dangling_latest(case_store)
    return result


def _drop_dangling_latest(case_store: Path) -> None:
    link = case_store / "latest"
    if link.is_symlink() and not link.exists():
        link.unlink()


def run_suite(
    suite: Suite,
    store: Path,
    *,
    progress: ProgressFactory | None = None,
    on_run: RunCallback | None = None,
    jobs: int = 1,
    only: set[RunKey] | None = None,
) -> tuple[list[CaseResult], str | None]:
    """Every case's runs (those in `only`, if given): (results in case order, the signal
    that stopped the suite early, if any). Cases with no run to do are left out."""
    cases = [c for c in (_restricted(c, only) for c in suite.cases) if c.seeds]
    if jobs > 1:
        return _run_parallel(cases, store, jobs, progress, on_run)
    results: list[CaseResult] = []
    with stop_on_signals() as stop:
        for case in cases:
            result = run_case(case, store, progress=progress, on_run=on_run, stop=stop)
            results.append(result)
            if result.interrupted:
                why = stop.signal or _interrupted_by(result) or "a signal"
                return results, why
    return results, None


def _restricted(case: Case, only: set[RunKey] | None) -> Case:
    if only is None:
        return case
    return replace(case, seeds=tuple(s for s in case.seeds if (case.number, s) in only))


def expected_duration_s(cfg: RunConfig) -> float:
    """A run's expected wall time: its time limit and quiet period, plus start-up and
    teardown (measured: 6 to 10 s for 3 nodes on this project's 2-core machine)."""
    return cfg.time_limit + cfg.quiet_s + SETUP_S


SETUP_S = 8.0


def _run_parallel(
    cases: list[Case],
    store: Path,
    jobs: int,
    progress: ProgressFactory | None,
    on_run: RunCallback | None,
) -> tuple[list[CaseResult], str | None]:
    from harness.suite.jobs import Children, run_pool

    children = Children()
    # Longest first (ties in suite order): the last runs to start are the short ones.
    tasks = sorted(
        ((case, seed) for case in cases for seed in case.seeds),
        key=lambda t: -expected_duration_s(t[0].run),
    )
    done: dict[RunKey, RunRecord] = {}
    lock = threading.Lock()
    for case in cases:
        (store / slug(case.name)).mkdir(parents=True, exist_ok=True)

    def work(task: tuple[Case, int]) -> None:
        case, seed = task
        cfg = replace(case.run, seed=seed)
        sink = progress(case, seed) if progress is not None else LineProgress(io.StringIO())
        started = time.monotonic()
        try:
            outcome = execute_run(cfg, store / slug(case.name), sink, children)
        finally:
            sink.close()
        rec = record_of(seed, outcome, time.monotonic() - started)
        with lock:
            done[(case.number, seed)] = rec
            if on_run is not None:
                on_run(case, rec)
        if outcome.interrupted:
            why = (outcome.error or "").removeprefix("interrupted by ")
            children.stop(why or "a signal")

    run_pool(tasks, jobs, work, children)
    results = []
    for case in cases:
        records = [done[(case.number, s)] for s in case.seeds if (case.number, s) in done]
        if not records:
            continue
        interrupted = children.stopping is not None and (
            len(records) < len(case.seeds) or any(r.interrupted for r in records)
        )
        results.append(CaseResult(case, records, interrupted))
        _drop_dangling_latest(store / slug(case.name))
    return results, children.stopping or None


def _interrupted_by(result: CaseResult) -> str | None:
    for rec in result.records:
        if rec.interrupted and rec.error:
            return rec.error.removeprefix("interrupted by ")
    return None


__all__ = [
    "EXIT_ERROR",
    "CaseResult",
    "RunRecord",
    "execute_run",
    "expected_duration_s",
    "record_of",
    "run_case",
    "run_suite",
]
