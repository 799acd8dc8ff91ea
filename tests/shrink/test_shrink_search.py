"""The shrinking search against fake runs: deterministic and flaky oracles, the budget,
Ctrl-C. No cluster is started; every "run" is a function of the candidate schedule."""

from __future__ import annotations

import random

import pytest

from harness.nemesis.base import FaultPlan
from harness.shrink.search import (
    MIN_DURATION_S,
    Candidate,
    Shrinker,
    Status,
    TrialOutcome,
)


def plan(i: int, at: float, dur: float, kind: str = "partition") -> FaultPlan:
    mode = "leader" if kind == "partition" else "candidate"
    params = {} if kind == "partition" else {"target": "holder"}
    return FaultPlan(kind, mode, at, dur, i, params)


def eight_faults() -> Candidate:
    plans = [plan(i, 2.0 + 3.0 * i, 2.5) for i in range(8)]
    plans[5] = plan(5, 17.0, 4.0, "pause")  # the culprit: a pause of the holder, >= 3 s
    return Candidate(tuple(plans), 30.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Oracle:
    """Fails when the schedule holds a pause of at least `min_pause` seconds; each call
    costs `wall` seconds of the fake clock. `p_fail` < 1 makes a failing schedule fail only
    sometimes (seeded), as real runs do."""

    def __init__(
        self, clock: FakeClock, *, min_pause: float = 3.0, p_fail: float = 1.0, wall: float = 10.0
    ) -> None:
        self.clock = clock
        self.min_pause = min_pause
        self.p_fail = p_fail
        self.wall = wall
        self.rng = random.Random(7)
        self.calls: list[Candidate] = []
        self.failing_calls: list[Candidate] = []

    def would_fail(self, c: Candidate) -> bool:
        return any(p.nemesis == "pause" and p.duration_s >= self.min_pause for p in c.plans)

    def __call__(self, candidate: Candidate, label: str) -> TrialOutcome:
        self.calls.append(candidate)
        self.clock.now += self.wall
        failed = self.would_fail(candidate) and self.rng.random() < self.p_fail
        if failed:
            self.failing_calls.append(candidate)
        return TrialOutcome(failed, ["split-brain"] if failed else [], f"run{len(self.calls)}")


def test_deterministic_oracle_shrinks_to_the_one_fault_that_matters() -> None:
    clock = FakeClock()
    oracle = Oracle(clock)
    start = eight_faults()
    result = Shrinker(oracle, tries=3, budget_s=10_000, clock=clock).shrink(start, "origin")
    assert result.stopped == "done"
    assert [p.nemesis for p in result.best.plans] == ["pause"]
    pause = result.best.plans[0]
    # Halving 4.0 gives 2.0, which passes: the duration stays.
    assert pause.duration_s == 4.0
    # Time limit cut to the end of the (moved) fault; the warm-up moved it early.
    assert pause.at_s == pytest.approx(0.5)
    assert result.best.time_limit == pytest.approx(4.5)
    assert (result.best_failures, result.best_tries) == (3, 3)
    assert result.best_run_dir is not None
    # Right after ddmin the fault is moved to the start and the limit cut to its end, so
    # every later try (the empty schedule, the durations) is a short run.
    phases = [s.phase for s in result.steps]
    after = phases[phases.index("warm-up") :]
    assert after[:3] == ["warm-up", "time limit", "faults"]  # then the empty schedule
    later = [s for s in result.steps if s.phase == "durations"]
    assert later and all(s.candidate.time_limit <= 4.5 for s in later)
    # Every kept step failed at least once; every step that did not fail was dropped.
    for step in result.steps:
        assert step.kept == (step.failures >= 1)
        assert oracle.would_fail(step.candidate) or not step.kept


def test_only_schedules_that_failed_are_kept_with_a_flaky_oracle() -> None:
    clock = FakeClock()
    oracle = Oracle(clock, p_fail=0.5)
    result = Shrinker(oracle, tries=3, budget_s=100_000, clock=clock).shrink(eight_faults())
    kept = [s for s in result.steps if s.kept]
    assert kept, "a 50 % oracle over 3 tries should keep something"
    for step in kept:
        # kept means a real failing run of exactly this schedule was seen
        assert any(c == step.candidate for c in oracle.failing_calls)
    assert oracle.would_fail(result.best)
    assert len(result.best.plans) <= len(eight_faults().plans)


def test_min_rate_requires_that_many_failures() -> None:
    clock = FakeClock()
    oracle = Oracle(clock, p_fail=0.5)
    shrinker = Shrinker(oracle, tries=4, min_rate=0.75, budget_s=100_000, clock=clock)
    assert shrinker.need == 3
    result = shrinker.shrink(eight_faults())
    for step in result.steps:
        assert step.kept == (step.failures >= 3)
        assert step.tries <= 4


def test_a_passing_candidate_costs_all_its_tries_a_failing_one_stops_early() -> None:
    clock = FakeClock()
    oracle = Oracle(clock)
    result = Shrinker(oracle, tries=3, budget_s=10_000, clock=clock).shrink(eight_faults())
    first = result.steps[0]  # first half of the faults: no pause in it
    assert not first.kept and first.tries == 3
    kept = next(s for s in result.steps if s.kept and s.phase == "faults")
    assert kept.tries == 1


def test_budget_is_respected_and_the_best_so_far_is_kept() -> None:
    clock = FakeClock()
    oracle = Oracle(clock, wall=10.0)
    budget = 95.0
    result = Shrinker(oracle, tries=3, budget_s=budget, clock=clock).shrink(eight_faults())
    assert result.stopped == "budget"
    assert clock.now <= budget
    assert len(oracle.calls) == 9
    assert oracle.would_fail(result.best)
    # ddmin: [0-3] passes (3 tries), [4-7] fails (1 try), [4,5] fails (1), [4] passes (3),
    # [5] fails (1): 9 tries and a single pause.
    assert [p.nemesis for p in result.best.plans] == ["pause"]


def test_no_try_starts_that_the_estimate_says_would_overrun() -> None:
    clock = FakeClock()
    oracle = Oracle(clock, wall=10.0)
    result = Shrinker(oracle, tries=3, budget_s=25.0, first_try_s=10.0, clock=clock).shrink(
        eight_faults()
    )
    assert result.stopped == "budget"
    assert clock.now == 20.0  # a third try of 10 s would have ended at 30 s > 25 s
    assert result.best == eight_faults()  # nothing kept yet: the start is the best


def test_ctrl_c_stops_and_keeps_the_best_so_far() -> None:
    clock = FakeClock()
    oracle = Oracle(clock)

    def trial(candidate: Candidate, label: str) -> TrialOutcome:
        if len(oracle.calls) == 5:
            raise KeyboardInterrupt
        return oracle(candidate, label)

    result = Shrinker(trial, tries=3, budget_s=10_000, clock=clock).shrink(eight_faults())
    assert result.stopped == "interrupted"
    assert len(oracle.calls) == 5
    assert oracle.would_fail(result.best)
    assert len(result.best.plans) == 2  # [4, 5] was kept before the interrupt
    assert not result.steps[-1].complete


def test_an_interrupted_run_stops_the_search_too() -> None:
    clock = FakeClock()
    oracle = Oracle(clock)

    def trial(candidate: Candidate, label: str) -> TrialOutcome:
        out = oracle(candidate, label)
        if len(oracle.calls) == 4:
            return TrialOutcome(False, [], "run4", "interrupted by SIGINT", interrupted=True)
        return out

    result = Shrinker(trial, tries=3, budget_s=10_000, clock=clock).shrink(eight_faults())
    assert result.stopped == "interrupted"
    assert len(oracle.calls) == 4
    # the interrupted run is not counted as a try
    assert sum(s.tries for s in result.steps) == 3


def test_durations_are_halved_while_it_still_fails() -> None:
    clock = FakeClock()
    oracle = Oracle(clock, min_pause=1.0)
    start = Candidate((plan(0, 5.0, 8.0, "pause"),), 20.0)
    result = Shrinker(oracle, tries=2, budget_s=10_000, clock=clock).shrink(start)
    # 8 -> 4 -> 2 -> 1 fail; 0.5 passes
    assert result.best.plans[0].duration_s == 1.0
    assert MIN_DURATION_S < 1.0
    assert result.best.time_limit < 20.0


def test_status_reports_step_failures_and_time_left() -> None:
    clock = FakeClock()
    oracle = Oracle(clock)
    seen: list[Status] = []

    def keep(status: Status) -> None:
        seen.append(Status(**vars(status)))

    Shrinker(oracle, tries=3, budget_s=1000, clock=clock, on_status=keep).shrink(eight_faults())
    assert any(s.phase == "faults" and s.try_number == 3 for s in seen)
    assert any(s.failures == 1 for s in seen)
    assert seen[-1].time_left_s < 1000
    assert seen[-1].best.startswith("1 fault (pause holder's candidate")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="tries"):
        Shrinker(lambda c, label: TrialOutcome(False), tries=0)
    with pytest.raises(ValueError, match="min_rate"):
        Shrinker(lambda c, label: TrialOutcome(False), min_rate=1.5)


def test_ctrl_c_between_tries_keeps_the_best_so_far_too() -> None:
    clock = FakeClock()
    oracle = Oracle(clock)
    raised = False

    def on_status(status: Status) -> None:
        nonlocal raised
        if len(oracle.calls) == 6 and not raised:
            raised = True
            raise KeyboardInterrupt  # while the display updates, not inside a try

    result = Shrinker(oracle, tries=3, budget_s=10_000, clock=clock, on_status=on_status).shrink(
        eight_faults()
    )
    assert result.stopped == "interrupted"
    assert oracle.would_fail(result.best)
    assert len(oracle.calls) == 6


def test_a_bug_that_needs_no_fault_shrinks_to_an_empty_schedule() -> None:
    clock = FakeClock()

    def always(candidate: Candidate, label: str) -> TrialOutcome:
        clock.now += 5
        return TrialOutcome(True, ["stale-leader"], "run")

    result = Shrinker(always, tries=3, budget_s=10_000, clock=clock).shrink(eight_faults())
    assert result.best.plans == ()
    assert result.best.time_limit == 1.0
    assert any(s.change == "no faults at all" and s.kept for s in result.steps)


def test_the_empty_schedule_is_tried_and_dropped_when_it_passes() -> None:
    clock = FakeClock()
    oracle = Oracle(clock)
    result = Shrinker(oracle, tries=3, budget_s=10_000, clock=clock).shrink(eight_faults())
    empty = [s for s in result.steps if s.change == "no faults at all"]
    assert len(empty) == 1 and not empty[0].kept and empty[0].tries == 3
