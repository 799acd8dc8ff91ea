"""The fault schedule: a pure function of the nemeses, the seed and the time limit.

After a warm-up, quiet gaps and faults alternate; at most one fault is active at a time
and every fault ends before the time limit. Nemeses are drawn from a shuffled bag (each
appears once per round, in a seeded order), and so are each nemesis's modes, so a long
run covers every nemesis and mode evenly while staying random. A nemesis may offer
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
    """Plans in start order: warm-up, fault, gap, fault, gap, ... until the next fault
    would not end before `time_limit_s`. Times are rounded to the millisecond."""
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
    rng = random.Random(seed)  # the only source of randomness: same seed, same plans
    by_name = {n.name: n for n in nemeses}
    nemesis_bag = _Bag(names, rng)
    mode_bags = {n.name: _Bag(n.modes, rng) for n in nemeses}
    plans: list[FaultPlan] = []
    t = round(float(warmup_s), 3)
    while True:
        name = nemesis_bag.draw()
        nem = by_name[name]
        mode = mode_bags[name].draw()
        dur = round(rng.uniform(*duration), 3)
        if t + dur >= time_limit_s:
            return plans
        pick = rng.randrange(2**32)
        draw_params = getattr(nem, "plan_params", None)
        params = dict(draw_params(mode, rng)) if draw_params is not None else {}
        plans.append(FaultPlan(name, mode, t, dur, pick, params))
        t = round(t + dur + rng.uniform(*gap), 3)
