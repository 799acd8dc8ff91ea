"""The fault schedule: a pure function of the nemeses, the seed and the time limit.

Each nemesis has its own timeline, as in Jepsen's composed nemeses: after a warm-up,
quiet gaps and its faults alternate, so one nemesis has at most one fault active at a
time, while faults of different nemeses overlap (a clock skew during a partition is
what exposes a lease that trusts clocks). Nemeses that name the same `timeline` share
one instead, taking turns in a seeded order: pause, kill, partition and lossy all take
a node or its links away (`timeline = "node"`), and two of them at once on different
nodes of a 3-node cluster take the quorum away, which hides every leader bug behind
unavailability (measured: etcd under partition, lossy, pause and kill on timelines of
their own had a network fault active 70 % of a run, and Consul's 30 s pauses of the lock
holder met a partition of another node that left no quorum). A kill of a frozen process
would also end the pause that was the point. A skew matters across the election another
fault causes, and a clock fault on a timeline of its own meets one only by chance, so a
nemesis that `brackets` a timeline (the clock brackets the node timeline:
`BracketsFaults` in nemesis/base.py) gives up its own when that timeline is in the run:
each of its faults begins 0.2-0.5 s before one of the node faults and ends 0.2-0.5 s
after it (one at a time: a node fault whose bracket would overlap the previous one goes
without; at the time limit the tail shrinks), and the one around a cut of the leader's
or the holder's links (partition or lossy mode `leader`, `holder`) is what the
bracketing nemesis says hurts that node most (a slow clock on the node that loses the
leadership: its lease outlives the election that the cut starts). With the two
timelines independent, a lease without a drift margin went uncaught under `all` in 16
of 20 runs, and in 15 of those 16 no slowed node was ever cut off.
Every fault ends before the time limit. Each nemesis draws its modes from a shuffled bag
(every mode once per round, in a seeded order), so a long run covers every mode evenly
while staying random (a nemesis with `mode_weights`, partition's leader and holder
weighing 3, draws from a weighted bag instead, heaviest first). A nemesis may offer
`plan_params(mode, rng)` to draw its own parameters (offsets, rates) from the same
seeded generator, and `target_weights` (target name -> integer weight) to have each
fault's `target` param drawn from a seeded bag that holds each target `weight` times per
round, heaviest first, so that a short run reaches every heavily weighted target; each
such target then has its own bags of modes and duration bands, whose first draws are the
whole node (`both`) and a long fault. Durations are drawn from `duration_s`, or, for a
nemesis given in `durations` (its defaults from the target's timing,
nemesis/durations.py), from its short and long bands (one short, two long per round).
`pick` is a seeded number the nemesis uses at run time to choose among the nodes it can
see. The same arguments always give the same schedule: runs are reproducible from their
seed.

Bounds: times are kept to the millisecond, so a fault lasts at least 1 ms (a shorter
`duration_s` would round to 0 and the timeline would never advance), and a schedule of
more than MAX_PLANNED_FAULTS faults is refused rather than built: both come from
configuration a user can get wrong, and neither may hang the harness.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from harness.errors import ConfigError
from harness.nemesis.base import BracketsFaults, FaultPlan, Nemesis, brackets_in, timeline_of
from harness.nemesis.durations import BANDS_PER_ROUND, Durations

STEP_S = 0.001  # the schedule's resolution: every time is a whole number of milliseconds
MAX_PLANNED_FAULTS = 10_000  # far beyond any useful run; bounds memory and build time
FIRST_MODE = "both"  # a weighted target's first fault hits the whole node
# A bracketing fault begins this long before the fault it brackets (time for it to be in
# force when the other strikes) and ends this long after it (past a frozen process's
# wake-up). Both together stay within the schedule's shortest default gap (1 s), so
# consecutive node faults can each be bracketed.
BRACKET_LEAD_S = (0.2, 0.5)
BRACKET_TAIL_S = (0.2, 0.5)
# The modes of a network fault (partition, lossy) that cut the links of the node whose
# loss of leadership a bracketing fault should accompany. Pauses and kills aimed at the
# leader or holder get an ordinary clock fault: a killed process's clock does not
# matter, and around them the clock's bumps and strobes keep coming (measured: when
# every leader- or holder-aimed fault got a slow clock, an elector without pre-vote or
# stickiness, caught through the spurious elections that a bumped or strobed follower
# clock starts, went uncaught under `all` in 4 of 20 runs, against 0 of 20 before).
AIMS = ("leader", "holder")


class ScheduleError(ConfigError):
    """A schedule that cannot be built from these settings; the message names the key."""


class _Bag:
    """Draw without replacement, refilling with a fresh shuffle when empty. `first`, if
    among the items, is drawn first in the first round (the rest of it shuffled)."""

    def __init__(self, items: Sequence[str], rng: random.Random, first: str | None = None) -> None:
        self.items = list(items)
        self.rng = rng
        self.left: list[str] = []
        self.first = first if first in self.items else None

    def draw(self) -> str:
        if not self.left:
            self.left = self.items[:]
            self.rng.shuffle(self.left)
            if self.first is not None:
                self.left.remove(self.first)
                self.left.append(self.first)  # drawn from the end
                self.first = None
        return self.left.pop()


class _WeightedBag(_Bag):
    """A round holds each item `weight` times, heaviest first: the items of the highest
    weight (shuffled), then those of at least the next weight, and so on down to every
    item once. So the first faults of a run reach every heavily weighted target, and the
    others come later in the round, as often as their weight says."""

    def __init__(self, weights: Mapping[str, int], rng: random.Random) -> None:
        super().__init__([t for t, w in weights.items() if w > 0], rng)
        self.weights = dict(weights)

    def draw(self) -> str:
        if not self.left:
            for level in range(max(self.weights.values()), 0, -1):
                layer = [t for t in self.items if self.weights[t] >= level]
                self.rng.shuffle(layer)
                # Drawn from the end: the heaviest layer goes last into the list.
                self.left = layer + self.left
        return self.left.pop()


class _Draws:
    """One nemesis's seeded bags on its timeline: targets (by weight), modes and
    duration bands per target. With target weights, each target has its own bags,
    whose first draws are the whole node (`both`) and a long fault: the first fault on
    the holder freezes its node past the bound, the first `all` is a power cut. Without
    weights, the nemesis's first fault is long."""

    def __init__(
        self,
        nem: Nemesis,
        rng: random.Random,
        own: tuple[tuple[float, float], tuple[float, float]] | None,
    ) -> None:
        self.nem = nem
        self.rng = rng
        self.own = own
        self.draw_params = getattr(nem, "plan_params", None)
        weights = getattr(nem, "target_weights", None)
        self.first_mode = FIRST_MODE if weights else None
        self.targets = _WeightedBag(weights, rng) if weights else None
        self.mode_weights: Mapping[str, int] | None = getattr(nem, "mode_weights", None)
        self.modes: dict[str | None, _Bag] = {}
        self.bands: dict[str | None, _Bag] = {}

    def next_plan(
        self, t: float, time_limit_s: float, duration: tuple[float, float]
    ) -> FaultPlan | None:
        """The plan starting at `t`, or None when it would not end before the limit."""
        rng = self.rng
        target = self.targets.draw() if self.targets is not None else None
        if target not in self.modes:
            self.modes[target] = (
                _WeightedBag(self.mode_weights, rng)
                if self.mode_weights
                else _Bag(self.nem.modes, rng, self.first_mode)
            )
        mode = self.modes[target].draw()
        if self.own is not None:
            band = self.bands.setdefault(target, _Bag(BANDS_PER_ROUND, rng, "long")).draw()
            dur = round(rng.uniform(*(self.own[0] if band == "short" else self.own[1])), 3)
            if t + dur >= time_limit_s and band == "long":
                # A time limit set shorter than the long faults: a short one, if it
                # fits, rather than no more faults at all.
                dur = round(rng.uniform(*self.own[0]), 3)
        else:
            dur = round(rng.uniform(*duration), 3)
        if t + dur >= time_limit_s:
            return None
        pick = rng.randrange(2**32)
        params = dict(self.draw_params(mode, rng)) if self.draw_params is not None else {}
        if target is not None:
            params["target"] = target
        return FaultPlan(self.nem.name, mode, t, dur, pick, params)


def _range(name: str, pair: tuple[float, float], positive: bool) -> tuple[float, float]:
    lo, hi = pair
    if lo < 0 or hi < lo or (positive and lo < STEP_S):
        need = f"{STEP_S:g} <= low <= high" if positive else "0 <= low <= high"
        raise ScheduleError(
            f"schedule: nemesis.schedule.{name} must be a (low, high) pair in seconds with "
            f"{need}; got {list(pair)}"
        )
    return float(lo), float(hi)


def make_schedule(
    nemeses: Sequence[Nemesis],
    seed: int,
    time_limit_s: float,
    *,
    warmup_s: float = 2.0,
    gap_s: tuple[float, float] = (1.0, 3.0),
    duration_s: tuple[float, float] = (2.0, 5.0),
    durations: Mapping[str, Durations] | None = None,
) -> list[FaultPlan]:
    """Plans in start order. Per nemesis: warm-up, fault, gap, fault, gap, ... until its
    next fault would not end before `time_limit_s`. Times are rounded to the millisecond;
    each timeline starts after a seeded extra delay of up to one gap, so that several
    nemeses do not all strike together at the end of the warm-up. A nemesis named in
    `durations` draws from those bands instead of `duration_s`."""
    gap = _range("gap_s", gap_s, positive=False)
    duration = _range("duration_s", duration_s, positive=True)
    if warmup_s < 0:
        raise ScheduleError(f"schedule: nemesis.schedule.warmup_s must be >= 0; got {warmup_s}")
    if not nemeses:
        return []
    names = [n.name for n in nemeses]
    if len(set(names)) != len(names):
        raise ScheduleError(f"schedule: a nemesis is given twice in {names}")
    for nem in nemeses:
        if not nem.modes:
            raise ScheduleError(f"schedule: nemesis {nem.name} has no modes")
    bands_of = {
        name: (_range(f"{name}.short", d.short, True), _range(f"{name}.long", d.long, True))
        for name, d in (durations or {}).items()
    }
    bracketing = brackets_in(nemeses)
    groups: dict[str, list[Nemesis]] = {}
    for nem in nemeses:
        if nem.name not in bracketing:
            groups.setdefault(timeline_of(nem), []).append(nem)
    plans: list[FaultPlan] = []
    for group, members in groups.items():
        # One seeded generator per timeline: adding a nemesis to a run leaves the
        # others' timelines as they were (a nemesis alone on its timeline keeps the
        # generator of its own name, so its schedules are those it always had).
        rng = random.Random(f"{seed}:{members[0].name if len(members) == 1 else group}")
        draws = {nem.name: _Draws(nem, rng, bands_of.get(nem.name)) for nem in members}
        # Nemeses that share a timeline (pause and kill: both act on processes, and a
        # kill that lands on a frozen process ends the pause that was the point) take
        # turns on it, in a seeded order, and never overlap each other.
        turns = _Bag([nem.name for nem in members], rng) if len(members) > 1 else None
        t = round(float(warmup_s) + rng.uniform(0.0, gap[1]), 3)
        while True:
            d = draws[turns.draw() if turns is not None else members[0].name]
            plan = d.next_plan(t, time_limit_s, duration)
            if plan is None:
                break
            plans.append(plan)
            if len(plans) > MAX_PLANNED_FAULTS:
                raise ScheduleError(
                    f"schedule: more than {MAX_PLANNED_FAULTS} faults planned in "
                    f"{time_limit_s:g} s; make nemesis.schedule.gap_s or "
                    f"nemesis.schedule.duration_s longer (or the time limit shorter)"
                )
            t = round(t + plan.duration_s + rng.uniform(*gap), 3)
    for nem in nemeses:
        if nem.name in bracketing:
            kinds = {m.name for m in groups[bracketing[nem.name]]}
            anchors = [p for p in plans if p.nemesis in kinds]
            # The generator of its own name, as when it is alone on its timeline.
            plans.extend(_bracket(nem, anchors, random.Random(f"{seed}:{nem.name}"), time_limit_s))
    plans.sort(key=lambda p: (p.at_s, p.nemesis))
    return plans


def _bracket(
    nem: Nemesis, anchors: Sequence[FaultPlan], rng: random.Random, time_limit_s: float
) -> list[FaultPlan]:
    """One fault of `nem` around each anchor that leaves room: from 0.2-0.5 s before it
    to 0.2-0.5 s after it (less at the time limit), never overlapping its previous one.
    Modes and params come from `nem`'s own bags, except around a cut of the leader's or
    holder's links, where `nem.bracket_params` says what hurts that node most."""
    assert isinstance(nem, BracketsFaults)
    draws = _Draws(nem, rng, None)
    plans: list[FaultPlan] = []
    free = 0.0
    for anchor in sorted(anchors, key=lambda p: p.at_s):
        start = round(anchor.at_s - rng.uniform(*BRACKET_LEAD_S), 3)
        anchor_end = round(anchor.at_s + anchor.duration_s, 3)
        # At the end of a run the tail shrinks to fit: the bracket still covers the fault.
        end = min(
            round(anchor_end + rng.uniform(*BRACKET_TAIL_S), 3), round(time_limit_s - STEP_S, 3)
        )
        if start < free or end <= anchor_end:
            continue
        dur = round(end - start, 3)
        special = nem.bracket_params(anchor.mode, rng) if anchor.mode in AIMS else None
        if special is None:
            plan = draws.next_plan(start, math.inf, (dur, dur))
            assert plan is not None  # with no time limit a plan always fits
        else:
            mode, params = special
            plan = FaultPlan(nem.name, mode, start, dur, rng.randrange(2**32), params)
        plans.append(plan)
        free = round(end + STEP_S, 3)  # the heal comes first, then the next start
    return plans
