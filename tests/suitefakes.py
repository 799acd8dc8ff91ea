"""Helpers for suite tests: verdicts and runs without clusters.

`FakeRuns` replaces harness.suite.runner.execute_run: each "run" makes a run directory
with results.json (and, if asked, a history) and returns an outcome whose verdict a
function of the run's configuration decides.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from harness.checker import Verdict, check_file
from harness.run.runner import RunOutcome
from harness.runconfig import RunConfig

ROOT = Path(__file__).resolve().parents[1]
VALID_HISTORY = ROOT / "examples" / "valid.jsonl"  # one failover of 0.7 s


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
            }
            for k in kinds
        ],
        "stats": {
            "acquisitions": acquisitions,
            "leaderless_ns": leaderless_ms * ms,
            "span_ns": span_ms * ms,
            "failover_ns": {
                "count": 3,
                "p50": None if p50_ms is None else p50_ms * ms,
                "p99": None if p99_ms is None else p99_ms * ms,
                "max": None if p99_ms is None else p99_ms * ms,
                "unrecovered": 0,
            },
        },
    }


Decide = Callable[[RunConfig], "Verdict | str"]  # a verdict, or an error message


class FakeRuns:
    def __init__(self, decide: Decide, *, history: Path | None = None) -> None:
        self.decide = decide
        self.history = history
        self.calls: list[RunConfig] = []
        self.interrupt_at: int | None = None  # 1-based call that comes back interrupted

    def __call__(self, cfg: RunConfig, store: Path, progress: Any) -> RunOutcome:
        self.calls.append(cfg)
        run_dir = store.resolve() / f"fake-{cfg.target}-s{cfg.seed}-{len(self.calls)}"
        run_dir.mkdir(parents=True)
        if len(self.calls) == self.interrupt_at:
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
