"""The shrinking search: from a failing schedule to a smaller one that still fails.

Runs are not deterministic, so a candidate is never assumed to fail: it is run up to
`tries` times and kept when at least `need` of them fail (a violation of the wanted
kind). Tries stop early once the answer is known (enough failures, or too few tries
left to reach them), because every try is a real cluster run. Steps, in order:

1. faults: delta debugging (Zeller's ddmin) over the fault list;
2. warm-up and time limit: every remaining fault moved earlier together (the time limit
   with them), then the time limit down to the end of the last fault, so that every
   later try is as short as its faults allow; then no fault at all;
3. durations: each remaining fault's duration, halved while the run still fails;
4. time limit and warm-up again, for what the shorter durations freed.

The search is given a wall-clock budget and never starts a try that its estimate
(the mean of the recent tries) says would end past it; Ctrl-C (KeyboardInterrupt, or a
try that reports it was interrupted) stops it. Either way the best candidate found so far
is the result. `Trial` is the one seam to real runs, so the algorithm is tested with
fake ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from harness.errors import HarnessError
from harness.nemesis.base import FaultPlan
from harness.nemesis.explicit import describe, plans_to_entries

MIN_DURATION_S = 0.5  # a fault shorter than this hardly exists at probe resolution
MIN_START_S = 0.5  # the earliest a fault may start: candidates must have begun
RECENT_TRIES = 3  # tries the estimate of the next one's wall time is averaged over


@dataclass(frozen=True)
class Candidate:
    plans: tuple[FaultPlan, ...]
    time_limit: float

    def key(self) -> bytes:
        return orjson.dumps([plans_to_entries(self.plans), self.time_limit])

    def last_end(self) -> float:
        return max((p.at_s + p.duration_s for p in self.plans), default=0.0)

    def summary(self) -> str:
        faults = _count(self.plans)
        if len(self.plans) == 1:
            faults += f" ({describe(self.plans[0])})"
        return f"{faults}, {self.time_limit:g} s"


@dataclass
class TrialOutcome:
    """One real run of a candidate."""

    failed: bool  # a violation of a wanted kind
    kinds: list[str] = field(default_factory=list)  # every violation kind it found
    run_dir: str | None = None
    error: str | None = None  # the run could not run (counts as not failing)
    wall_s: float = 0.0
    interrupted: bool = False  # Ctrl-C or SIGTERM during the run: stop the search


# One real run of a candidate; the label names it (step and try) for its run directory.
Trial = Callable[[Candidate, str], TrialOutcome]


@dataclass
class Step:
    """One candidate evaluated: what shrink.json lists."""

    number: int
    phase: str
    change: str
    candidate: Candidate
    tries: int = 0
    failures: int = 0
    kinds: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    kept: bool = False
    complete: bool = True  # False when the budget or Ctrl-C cut its tries short
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "phase": self.phase,
            "change": self.change,
            "schedule": plans_to_entries(self.candidate.plans),
            "time_limit": self.candidate.time_limit,
            "tries": self.tries,
            "failures": self.failures,
            "kinds": self.kinds,
            "kept": self.kept,
            "complete": self.complete,
            "wall_s": round(self.wall_s, 3),
            "runs": self.runs,
        }


@dataclass
class Status:
    """What the progress display shows."""

    phase: str = "starting"
    step: int = 0
    change: str = ""
    candidate: str = ""
    try_number: int = 0
    tries: int = 0
    failures: int = 0
    best: str = ""
    time_left_s: float = 0.0
    note: str = ""


@dataclass
class ShrinkResult:
    start: Candidate
    best: Candidate
    best_failures: int  # failing tries of the best candidate (the start: its own run)
    best_tries: int
    best_run_dir: str | None  # a failing run of the best candidate
    steps: list[Step]
    stopped: str  # "done", "budget" or "interrupted"
    wall_s: float


class _Stop(HarnessError):
    """Ends the search early (budget spent or interrupted); caught inside Shrinker."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Shrinker:
    def __init__(
        self,
        trial: Trial,
        *,
        tries: int = 3,
        min_rate: float | None = None,
        budget_s: float = 1200.0,
        first_try_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        on_status: Callable[[Status], None] | None = None,
    ) -> None:
        if tries < 1:
            raise ValueError(f"tries must be >= 1; got {tries}")
        if min_rate is not None and not 0 < min_rate <= 1:
            raise ValueError(f"min_rate must be in (0, 1]; got {min_rate}")
        self.trial = trial
        self.tries = tries
        # Failing tries needed out of `tries` to keep a candidate.
        self.need = 1 if min_rate is None else max(1, math.ceil(min_rate * tries - 1e-9))
        self.budget_s = budget_s
        self.clock = clock
        self.on_status = on_status or (lambda status: None)
        self.status = Status()
        self.steps: list[Step] = []
        self._walls: list[float] = [first_try_s] if first_try_s > 0 else []
        self._cache: dict[bytes, Step] = {}
        self._started = 0.0
        self._best_step: Step | None = None

    # -- budget and display -------------------------------------------------------

    def _left(self) -> float:
        return self.budget_s - (self.clock() - self._started)

    def _estimate(self) -> float:
        recent = self._walls[-RECENT_TRIES:]
        return sum(recent) / len(recent) if recent else 0.0

    def _show(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.status.time_left_s = max(0.0, self._left())
        self.on_status(self.status)

    # -- one candidate ----------------------------------------------------------------

    def _try(self, candidate: Candidate, label: str, step: Step) -> TrialOutcome:
        """One run; its wall time (on our clock) feeds the estimate of the next one."""
        began = self.clock()
        try:
            outcome = self.trial(candidate, label)
        except KeyboardInterrupt:
            step.complete = False
            raise _Stop("interrupted") from None
        finally:
            self._walls.append(self.clock() - began)
        return outcome

    def _test(self, phase: str, change: str, candidate: Candidate) -> bool:
        """Run `candidate` until its fate is known; True when it is kept."""
        cached = self._cache.get(candidate.key())
        if cached is not None:
            if cached.kept:
                self._best_step = cached
            return cached.kept
        step = Step(len(self.steps) + 1, phase, change, candidate)
        self.steps.append(step)
        self._cache[candidate.key()] = step
        self._show(
            phase=phase, step=step.number, change=change, candidate=candidate.summary(),
            try_number=0, tries=self.tries, failures=0,
        )  # fmt: skip
        began = self.clock()
        try:
            while (
                step.failures < self.need and step.tries - step.failures <= self.tries - self.need
            ):
                if self._left() <= 0 or self._left() < self._estimate():
                    step.complete = False
                    raise _Stop("budget")
                self._show(try_number=step.tries + 1)
                outcome = self._try(candidate, f"step {step.number} try {step.tries + 1}", step)
                if outcome.interrupted:
                    step.complete = False
                    raise _Stop("interrupted")
                step.tries += 1
                step.failures += outcome.failed
                step.kinds = sorted({*step.kinds, *outcome.kinds})
                step.runs.append(
                    {
                        "run_dir": outcome.run_dir,
                        "failed": outcome.failed,
                        "kinds": outcome.kinds,
                        "error": outcome.error,
                        "wall_s": round(outcome.wall_s, 3),
                    }
                )
                self._show(failures=step.failures)
        finally:
            step.wall_s = self.clock() - began
        step.kept = step.failures >= self.need
        if step.kept:
            self._best_step = step
            self._show(best=candidate.summary())
        return step.kept

    # -- the phases -------------------------------------------------------------------

    def _faults(self, cand: Candidate) -> Candidate:
        """ddmin: try each of n chunks alone, then each complement; refine n when none
        fails. Ends 1-minimal: removing any one remaining fault was tried and passed."""
        plans = list(cand.plans)
        n = 2
        while len(plans) >= 2:
            chunks = _split(plans, n)
            reduced = False
            for i, chunk in enumerate(chunks):
                trial = replace(cand, plans=tuple(chunk))
                if self._test("faults", f"keep chunk {i + 1}/{n} ({_count(chunk)})", trial):
                    plans, n, reduced = chunk, 2, True
                    break
            if not reduced and n > 2:
                for i in range(n):
                    rest = [p for j, c in enumerate(chunks) if j != i for p in c]
                    trial = replace(cand, plans=tuple(rest))
                    if self._test("faults", f"drop chunk {i + 1}/{n} ({_count(rest)})", trial):
                        plans, n, reduced = rest, max(n - 1, 2), True
                        break
            if not reduced:
                if n >= len(plans):
                    break
                n = min(2 * n, len(plans))
        return replace(cand, plans=tuple(plans))

    def _no_faults(self, cand: Candidate) -> Candidate:
        """ddmin never tries the empty list: a run that fails without any fault says the
        bug needs none (and that the last fault was not what mattered)."""
        if not cand.plans:
            return cand
        trial = replace(cand, plans=())
        return trial if self._test("faults", "no faults at all", trial) else cand

    def _durations(self, cand: Candidate) -> Candidate:
        for i in range(len(cand.plans)):
            while True:
                plan = cand.plans[i]
                shorter = max(MIN_DURATION_S, round(plan.duration_s / 2, 1))
                if shorter >= plan.duration_s - 0.05:
                    break
                plans = list(cand.plans)
                plans[i] = replace(plan, duration_s=shorter)
                trial = replace(cand, plans=tuple(plans))
                change = f"fault {i + 1}: {plan.duration_s:g} s -> {shorter:g} s"
                if not self._test("durations", change, trial):
                    break
                cand = trial
        return cand

    def _time_limit(self, cand: Candidate) -> Candidate:
        # The workload must outlast the last fault; a violation that shows after the
        # heal still lands in the history during the quiet period.
        floor = max(1.0, math.ceil(cand.last_end() * 10) / 10)
        for target in (floor, round((floor + cand.time_limit) / 2, 1)):
            if target >= cand.time_limit - 0.05:
                continue
            trial = replace(cand, time_limit=target)
            if self._test("time limit", f"{cand.time_limit:g} s -> {target:g} s", trial):
                return trial
        return cand

    def _warmup(self, cand: Candidate) -> Candidate:
        first = min((p.at_s for p in cand.plans), default=0.0)
        for shift in (first - MIN_START_S, (first - MIN_START_S) / 2):
            shift = round(shift, 1)
            if shift < 0.1:
                continue
            plans = tuple(replace(p, at_s=round(p.at_s - shift, 3)) for p in cand.plans)
            limit = max(round(cand.time_limit - shift, 1), 1.0)
            trial = Candidate(plans, limit)
            if self._test("warm-up", f"every fault {shift:g} s earlier", trial):
                return trial
        return cand

    def _confirm(self, cand: Candidate, start_failures: int) -> None:
        """Run the best candidate up to `tries` in all, for its reproduction rate."""
        step = self._cache.get(cand.key())
        if step is None:  # the start itself: its failing run is the one we came from
            return
        self._show(phase="confirm", step=step.number, change="reproduction rate",
                   candidate=cand.summary(), tries=self.tries, failures=step.failures)  # fmt: skip
        while step.tries < self.tries:
            if self._left() <= 0 or self._left() < self._estimate():
                raise _Stop("budget")
            self._show(try_number=step.tries + 1)
            outcome = self._try(cand, f"step {step.number} confirm {step.tries + 1}", step)
            if outcome.interrupted:
                raise _Stop("interrupted")
            step.tries += 1
            step.failures += outcome.failed
            step.kinds = sorted({*step.kinds, *outcome.kinds})
            step.runs.append(
                {"run_dir": outcome.run_dir, "failed": outcome.failed, "kinds": outcome.kinds,
                 "error": outcome.error, "wall_s": round(outcome.wall_s, 3), "confirm": True}
            )  # fmt: skip
            self._show(failures=step.failures)

    def shrink(self, start: Candidate, start_run_dir: str | None = None) -> ShrinkResult:
        """Shrink `start` (a schedule whose run failed, in `start_run_dir`)."""
        self._started = self.clock()
        self._show(best=start.summary())
        best = start
        stopped = "done"
        try:
            # Right after the faults, the rest is moved to the start of the run and the
            # time limit cut to its end: every later try then runs only as long as its
            # faults need (a lone fault at 20 s of a 30 s run becomes a 5 s run).
            phases = (
                self._faults, self._warmup, self._time_limit, self._no_faults,
                self._durations, self._time_limit, self._warmup,
            )  # fmt: skip
            for phase in phases:
                best = phase(best)
            self._confirm(best, 1)
        except (_Stop, KeyboardInterrupt) as stop:
            # Ctrl-C between tries (in our own bookkeeping) stops the search the same way.
            stopped = stop.why if isinstance(stop, _Stop) else "interrupted"
            if self._best_step is not None:
                best = self._best_step.candidate
        self._show(phase=f"stopped: {stopped}")
        step = self._cache.get(best.key())
        if step is None or best == start:
            failures, tries, run_dir = 1, 1, start_run_dir
        else:
            failures, tries = step.failures, step.tries
            run_dir = next((r["run_dir"] for r in step.runs if r["failed"]), None)
        return ShrinkResult(
            start, best, failures, tries, run_dir, self.steps, stopped, self.clock() - self._started
        )


def _count(plans: Sequence[FaultPlan]) -> str:
    return f"{len(plans)} fault{'s' if len(plans) != 1 else ''}"


def _split(items: Sequence[FaultPlan], n: int) -> list[list[FaultPlan]]:
    """`items` in n contiguous chunks of near-equal size (none empty)."""
    n = min(n, len(items))
    size, extra = divmod(len(items), n)
    out, at = [], 0
    for i in range(n):
        width = size + (1 if i < extra else 0)
        out.append(list(items[at : at + width]))
        at += width
    return out


__all__ = ["Candidate", "ShrinkResult", "Shrinker", "Status", "Step", "Trial", "TrialOutcome"]
