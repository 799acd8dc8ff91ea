"""Default fault durations from the target's own timing, and the time limit they need.

A fault matters when it lasts past the moment the system hands leadership to someone
else (`Timing.takeover_s`: an election, or a lease's real invalidation plus lock-delay):
a pause shorter than a Consul session's 20 s never costs the holder its lock. So unless
the run's YAML sets `nemesis.schedule.duration_s`, each nemesis draws its durations from
two bands around that bound: `short` (below it) and `long` (well past it), alternating
from a seeded bag that holds one short and two long per round, so that every three
faults of a nemesis include at least one of each. A nemesis may state its own bound by
offering `duration_bound(timing) -> (seconds, why)`; otherwise the takeover bound is its.

A target that states no timing (an out-of-tree plugin without `StatesTiming`) keeps the
schedule's fixed defaults, and the run says so once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.nemesis.base import Nemesis, timeline_of
from harness.targets.base import StatesTiming, Timing

DEFAULT_TIME_LIMIT_S = 30.0
FAULTS_TO_FIT = 3  # the default time limit fits at least this many long faults
# One round of the duration bag: mostly long faults (the ones that find bugs), one short.
BANDS_PER_ROUND: tuple[str, ...] = ("short", "long", "long")


@dataclass(frozen=True)
class Durations:
    """Where one nemesis's fault durations come from: seconds, (low, high) per band."""

    short: tuple[float, float]
    long: tuple[float, float]
    why: str  # the bound they straddle, in words

    @property
    def longest_s(self) -> float:
        return self.long[1]

    def band(self, name: str) -> tuple[float, float]:
        return self.short if name == "short" else self.long

    def describe(self, nemesis: str) -> str:
        """E.g. "pause: 2-32 s (consul session TTL 10 s, invalidated by 20 s, ...)"."""
        return f"{nemesis}: {self.short[0]:g}-{self.long[1]:g} s ({self.why})"


def _r(x: float) -> float:
    return round(x, 2)


def straddle(bound_s: float, why: str) -> Durations:
    """Bands around `bound_s`: short from min(2 s, bound/2) to 0.8 x bound, long from
    1.25 x bound + 0.5 s to 1.5 x bound + 2 s (past it by a margin that covers renewal
    and detection delays, e.g. 25.5-32 s for a Consul session invalidated by 20 s)."""
    if bound_s <= 0:
        raise ValueError(f"a duration bound must be positive, got {bound_s}")
    lo = min(2.0, bound_s / 2)
    short = (_r(lo), _r(max(0.8 * bound_s, lo)))
    long = (_r(1.25 * bound_s + 0.5), _r(1.5 * bound_s + 2.0))
    return Durations(short, long, why)


def timing_of(target: object) -> Timing | None:
    """The target's timing, or None when it states none (an older plugin)."""
    return target.timing if isinstance(target, StatesTiming) else None


def durations_for(nemesis: Nemesis, timing: Timing) -> Durations:
    """The bands for one nemesis: its own bound if it states one, else the takeover."""
    own = getattr(nemesis, "duration_bound", None)
    if own is not None:
        bound_s, why = own(timing)
        return straddle(float(bound_s), str(why))
    return straddle(timing.takeover_s, timing.describe())


def default_durations(nemeses: Sequence[Nemesis], timing: Timing) -> dict[str, Durations]:
    """Every nemesis's bands. One that brackets another timeline's faults in this run
    (nemesis/schedule.py) takes its durations from them, but its bands still count
    towards the default time limit: measured on the reference elector without pre-vote,
    `all` caught it in 20 of 20 runs at 43 s and in about 17 of 20 at 30 s, the limit
    without the clock's five-election-timeout bands."""
    return {n.name: durations_for(n, timing) for n in nemeses}


def fitting_time_limit(
    durations: Mapping[str, Durations],
    warmup_s: float,
    gap_s: tuple[float, float],
    nemeses: Sequence[Nemesis] = (),
) -> float:
    """The default time limit: at least DEFAULT_TIME_LIMIT_S, and long enough, after the
    warm-up (and a timeline's seeded start delay of up to one gap), for FAULTS_TO_FIT of
    the longest faults with their gaps, or for a whole round of the busiest timeline if
    more nemeses share one (`all`: pause, kill, partition and lossy take turns, and each
    must come at least once)."""
    if not durations:
        return DEFAULT_TIME_LIMIT_S
    longest = max(d.longest_s for d in durations.values())
    need = warmup_s + gap_s[1] + faults_to_fit(nemeses) * (longest + gap_s[1])
    return float(max(DEFAULT_TIME_LIMIT_S, math.ceil(need)))


def faults_to_fit(nemeses: Sequence[Nemesis]) -> int:
    """FAULTS_TO_FIT, or the number of nemeses on the busiest shared timeline."""
    sharing: dict[str, int] = {}
    for nem in nemeses:
        key = timeline_of(nem)
        sharing[key] = sharing.get(key, 0) + 1
    return max(FAULTS_TO_FIT, *sharing.values()) if sharing else FAULTS_TO_FIT


__all__ = [
    "BANDS_PER_ROUND", "DEFAULT_TIME_LIMIT_S", "FAULTS_TO_FIT", "Durations",
    "default_durations", "durations_for", "faults_to_fit", "fitting_time_limit", "straddle",
    "timing_of",
]  # fmt: skip
