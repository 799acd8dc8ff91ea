"""The fault schedule: a pure function of the nemeses, the seed and the time limit.

Each nemesis has its own timeline, as in Jepsen's composed nemeses: after a warm-up,
quiet gaps and its faults alternate, so one nemesis has at most one fault active at a
time, while faults of different nemeses overlap (a clock skew during a partition is
what exposes a lease that trusts clocks). Every fault ends before the time limit. Each
nemesis draws its modes from a shuffled bag (every mode once per round, in a seeded
order), so a long run covers every mode evenly while staying random. A nemesis may offer
`plan_params(mode, rng)` to draw its own parameters (targets, offsets, rates) from the
same seeded generator; `pick` is a seeded number the nemesis uses at run time to choose
among the nodes it can see. The same arguments always give the same schedule: runs are
reproducible from their seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from nemesis.base import FaultPlan, Nemesis


class _Bag:
    """Draw without replacement, refilling with a fresh shuffle when empty."""

    def __init__(self, items: Sequence[str], rng: random.Random) -> None:
        self.items = list(items)
        self.rng = rng
        self.left: list[str] = []

    def draw(self) -> str:
        if not self.left:
            self.left = self.items[:]
            self.rng.shuffle(self.left)
        return self.left.pop()


def _range(name: str, pair: tuple[float, float], positive: bool) -> tuple[float, float]:
    lo, hi = pair
    if lo < 0 or hi < lo or (positive and lo <= 0):
        need = "0 < low <= high" if positive else "0 <= low <= high"
        raise ValueError(f"schedule: {name} must be a (low, high) pair with {need}; got {pair}")
    return float(lo), float(hi)


def make_schedule(
    nemeses: Sequence[Nemesis],
    seed: int,
    time_limit_s: float,
    *,
    warmup_s: float = 2.0,
    gap_s: tuple[float, float] = (1.0, 3.0),
    duration_s: tuple[float, float] = (2.0, 5.0),
) -> list[FaultPlan]:
    """Plans in start order. Per nemesis: warm-up, fault, gap, fault, gap, ... until its
    next fault would not end before `time_limit_s`. Times are rounded to the millisecond;
    each timeline starts after a seeded extra delay of up to one gap, so that several
    nemeses do not all strike together at the end of the warm-up."""
    gap = _range("gap_s", gap_s, positive=False)
    duration = _range("duration_s", duration_s, positive=True)
    if warmup_s < 0:
        raise ValueError(f"schedule: warmup_s must be >= 0; got {warmup_s}")
    if not nemeses:
        return []
    names = [n.name for n in nemeses]
    if len(set(names)) != len(names):
        raise ValueError(f"schedule: a nemesis is given twice in {names}")
    for nem in nemeses:
        if not nem.modes:
            raise ValueError(f"schedule: nemesis {nem.name} has no modes")
    plans: list[FaultPlan] = []
    for nem in nemeses:
        # One seeded generator per nemesis: adding a nemesis to a run leaves the
        # others' timelines as they were.
        rng = random.Random(f"{seed}:{nem.name}")
        modes = _Bag(nem.modes, rng)
        draw_params = getattr(nem, "plan_params", None)
        t = round(float(warmup_s) + rng.uniform(0.0, gap[1]), 3)
        while True:
            mode = modes.draw()
            dur = round(rng.uniform(*duration), 3)
            if t + dur >= time_limit_s:
                break
            pick = rng.randrange(2**32)
            params = dict(draw_params(mode, rng)) if draw_params is not None else {}
            plans.append(FaultPlan(nem.name, mode, t, dur, pick, params))
            t = round(t + dur + rng.uniform(*gap), 3)
    plans.sort(key=lambda p: (p.at_s, p.nemesis))
    return plans
