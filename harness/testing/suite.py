"""Suite test doubles: verdicts and runs without clusters.

`FakeRuns` replaces harness.suite.runner.execute_run: each "run" makes a run directory
with results.json (and, if asked, a history) and returns an outcome whose verdict a
function of the run's configuration decides.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from harness.checker import Verdict, check_file
from harness.checker.types import FailoverSummary
from harness.run.runner import RunOutcome
from harness.runconfig import RunConfig


def verdict(
    *,
    kinds: tuple[str, ...] = (),
    p50_ms: int | None = 100,
    p99_ms: int | None = 200,
    leaderless_ms: int = 1_000,
    span_ms: int = 10_000,
    acquisitions: int = 5,
    valid: Any = None,
) -> Verdict:
    ms = 1_000_000
    failover: FailoverSummary = {
        "count": 3,
        "p50": None if p50_ms is None else p50_ms * ms,
        "p99": None if p99_ms is None else p99_ms * ms,
        "max": None if p99_ms is None else p99_ms * ms,
        "unrecovered": 0,
        "overlapped": 0,
    }
    return {
        "valid": (not kinds) if valid is None else valid,
        "violations": [
            {
                "kind": k,
                "election": "leader",
                "processes": [1, 2],
                "start": 0,
                "end": 1,
                "detail": f"<b>{k}</b>",
                "events": [],
            }
            for k in kinds
        ],
        "stats": {
            "acquisitions": acquisitions,
            "leaderless_ns": leaderless_ms * ms,
            "span_ns": span_ms * ms,
            "failover_ns": failover,
            "writes_applied": 0,
            "writes_failed": 0,
            "writes_indeterminate": 0,
            "status_observations": 0,
            "nemesis_events": 0,
            "elections": {
                "leader": {
                    "acquisitions": acquisitions,
                    "leaderless_ns": leaderless_ms * ms,
                    "failover_ns": failover,
                }
            },
        },
        "settings": {"tolerance_ns": 0, "stale_grace_ns": 0},
    }


Decide = Callable[[RunConfig], "Verdict | str"]  # a verdict, or an error message


class FakeRuns:
    def __init__(self, decide: Decide, *, history: Path | None = None) -> None:
        self.decide = decide
        self.history = history
        self.calls: list[RunConfig] = []
        self.interrupt_at: int | None = None  # 1-based call that comes back interrupted
        self.children: list[Any] = []  # what each call got as `children` (--jobs > 1)
        self._lock = threading.Lock()  # --jobs N calls it from N threads

    def __call__(
        self, cfg: RunConfig, store: Path, progress: Any, children: Any = None
    ) -> RunOutcome:
        with self._lock:
            self.calls.append(cfg)
            self.children.append(children)
            number = len(self.calls)
            if number == self.interrupt_at and children is not None:
                # As a real Ctrl-C does: the suite's signal handler stops the pool when the
                # signal arrives, before the interrupted run comes back (instant fake runs
                # in other threads would otherwise race past it).
                children.stop("SIGINT")
        run_dir = store.resolve() / f"fake-{cfg.target}-s{cfg.seed}-{number}"
        run_dir.mkdir(parents=True)
        if number == self.interrupt_at:
            return RunOutcome(run_dir, None, 2, "interrupted by SIGINT", "local", True)
        decided = self.decide(cfg)
        if isinstance(decided, str):
            outcome = RunOutcome(run_dir, None, 2, decided, "local")
        else:
            if self.history is not None:
                shutil.copy(self.history, run_dir / "history.jsonl")
                decided = check_file(run_dir / "history.jsonl")
            code = 0 if decided["valid"] is True else 1
            outcome = RunOutcome(run_dir, decided, code, None, "local")
        (run_dir / "results.json").write_bytes(
            orjson.dumps({"verdict": outcome.verdict, "error": outcome.error})
        )
        return outcome
