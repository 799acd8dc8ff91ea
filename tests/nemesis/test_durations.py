"""Default fault durations from the target's timing (nemesis/durations.py) and how the
schedule draws them: they straddle the bound, explicit settings win, a seed replays."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from harness.nemesis import make_nemeses
from harness.nemesis.durations import (
    DEFAULT_TIME_LIMIT_S,
    default_durations,
    durations_for,
    fitting_time_limit,
    straddle,
    timing_of,
)
from harness.nemesis.schedule import make_schedule
from harness.targets.base import Timing
from harness.targets.consul import ConsulTarget
from harness.targets.etcd import EtcdTarget
from harness.targets.reference import ReferenceTarget


@pytest.mark.parametrize("bound", [0.3, 0.6, 2.0, 20.0, 75.0])
def test_bands_straddle_the_bound(bound: float) -> None:
    d = straddle(bound, "why")
    assert 0 < d.short[0] <= d.short[1] < bound
    # Long faults are past the bound by a margin, not just at it.
    assert d.long[0] >= 1.25 * bound and d.long[1] > d.long[0]


def test_targets_state_their_timing() -> None:
    consul = ConsulTarget({"lock": {"session_ttl_s": 15, "lock_delay_s": 5}})
    t = timing_of(consul)
    assert t == Timing("consul", 1.0, 15.0, 30.0, 5.0, lease_name="session")
    assert t.takeover_s == 35.0  # invalidation at 2 x TTL, then the lock-delay
    assert "consul session TTL 15 s, invalidated by 30 s, lock-delay 5 s" in t.describe()
    etcd = timing_of(EtcdTarget({"election_timeout_ms": 3000}))
    assert etcd is not None and etcd.lease_s == 4.5  # etcd raises 2 s to 1.5 x 3 s
    # A frozen leader's holder: an election, then a lease extended by an election timeout.
    assert etcd.lease_invalidated_s == 4.5 + 2 * 3.0 and etcd.takeover_s == 10.5
    ref = timing_of(ReferenceTarget({"election_timeout_ms": [400, 800]}))
    assert ref is not None and ref.takeover_s == 0.8
    assert timing_of(object()) is None  # an out-of-tree target that states nothing


def test_a_consul_pause_outlasts_the_session_by_a_margin() -> None:
    pause = make_nemeses(["pause"], {})[0]
    d = durations_for(pause, ConsulTarget().timing)
    assert d.long[0] > 20.0 + 5.0  # the session is gone by 20 s; the margin covers renewals
    assert d.short[1] < 20.0
    assert d.describe("pause").startswith("pause: 2-32 s (consul session TTL 10 s")


def test_a_nemesis_may_state_its_own_bound() -> None:
    class Own:
        name = "own"
        modes = ("x",)

        def duration_bound(self, timing: Timing) -> tuple[float, str]:
            return timing.election_timeout_s, "the election timeout"

    d = durations_for(Own(), ConsulTarget().timing)  # type: ignore[arg-type]
    assert d.long[0] >= 1.25 and d.why == "the election timeout"


def _durations_of(plans: list[Any], nemesis: str) -> list[float]:
    return [p.duration_s for p in plans if p.nemesis == nemesis]


def test_the_schedule_draws_both_bands_from_a_seeded_bag() -> None:
    nems = make_nemeses(["partition", "pause"], {})
    d = default_durations(nems, EtcdTarget().timing)
    plans = make_schedule(nems, 5001, 600.0, durations=d)
    bound = EtcdTarget().timing.takeover_s
    for name in ("partition", "pause"):
        got = _durations_of(plans, name)
        short = [x for x in got if d[name].short[0] <= x <= d[name].short[1]]
        long = [x for x in got if d[name].long[0] <= x <= d[name].long[1]]
        assert len(short) + len(long) == len(got)  # nothing outside the bands
        assert short and all(x < bound for x in short)
        assert long and all(x > bound for x in long)
        # One short and two long per round of three.
        assert abs(len(long) / len(got) - 2 / 3) < 0.05
    # Partition has no targets to weigh: its own first fault is long.
    assert _durations_of(plans, "partition")[0] >= d["partition"].long[0]


def test_the_same_seed_gives_the_same_durations_and_another_seed_others() -> None:
    nems = make_nemeses(["pause", "kill"], {})
    d = default_durations(nems, ConsulTarget().timing)
    a = make_schedule(nems, 5002, 300.0, durations=d)
    assert a == make_schedule(make_nemeses(["pause", "kill"], {}), 5002, 300.0, durations=d)
    assert a != make_schedule(nems, 5003, 300.0, durations=d)


def test_without_durations_the_fixed_range_is_used() -> None:
    nems = make_nemeses(["partition"], {})
    plans = make_schedule(nems, 5004, 300.0, duration_s=(2.0, 5.0))
    assert plans and all(2.0 <= p.duration_s <= 5.0 for p in plans)


def test_the_default_time_limit_fits_three_long_faults() -> None:
    nems = make_nemeses(["pause"], {})
    consul = default_durations(nems, ConsulTarget().timing)
    limit = fitting_time_limit(consul, 2.0, (1.0, 3.0))
    assert limit >= 2.0 + 3.0 + 3 * (consul["pause"].longest_s + 3.0)
    # Three of the longest faults fit whatever the seed.
    for seed in range(5000, 5050):
        assert len(make_schedule(nems, seed, limit, durations=consul)) >= 3
    # Short bounds keep the plain default.
    ref = default_durations(nems, ReferenceTarget().timing)
    assert fitting_time_limit(ref, 2.0, (1.0, 3.0)) == DEFAULT_TIME_LIMIT_S
    assert fitting_time_limit({}, 2.0, (1.0, 3.0)) == DEFAULT_TIME_LIMIT_S


def test_a_time_limit_shorter_than_the_long_faults_still_gets_short_ones() -> None:
    nems = make_nemeses(["partition"], {})
    d = default_durations(nems, ConsulTarget().timing)  # long: 25.5-32 s
    plans = make_schedule(nems, 5005, 20.0, durations=d)
    assert plans and all(d["partition"].short[0] <= p.duration_s <= 16.0 for p in plans)


def test_clock_faults_straddle_several_election_timeouts() -> None:
    clock = make_nemeses(["clock"], {})[0]
    ref = durations_for(clock, ReferenceTarget().timing)  # election timeout up to 0.6 s
    assert ref.short[1] < 3.0 < ref.long[0]
    consul = durations_for(clock, ConsulTarget().timing)  # the session's 20 s is longer
    assert consul.short[1] < 20.0 < consul.long[0]


def test_node_faults_take_turns_on_one_timeline_and_clock_overlaps_them() -> None:
    nems = make_nemeses(["partition", "lossy", "pause", "kill", "clock"], {})
    d = default_durations(nems, EtcdTarget().timing)
    plans = make_schedule(nems, 5006, 600.0, durations=d)
    node = [p for p in plans if p.nemesis != "clock"]
    assert {p.nemesis for p in node} == {"partition", "lossy", "pause", "kill"}
    for prev, nxt in itertools.pairwise(node):
        # One node fault at a time, with the plain gap (1 to 3 s) between.
        assert prev.at_s + prev.duration_s + 1.0 - 1e-6 <= nxt.at_s
        assert nxt.at_s <= prev.at_s + prev.duration_s + 3.0 + 1e-6
    # Each round of the shared timeline holds every kind once.
    for i in range(0, len(node) - 3, 4):
        assert {p.nemesis for p in node[i : i + 4]} == {"partition", "lossy", "pause", "kill"}
    clock = [p for p in plans if p.nemesis == "clock"]
    assert any(
        c.at_s < n.at_s + n.duration_s and n.at_s < c.at_s + c.duration_s
        for c in clock
        for n in node
    )


def test_the_default_time_limit_fits_a_round_of_the_shared_timeline() -> None:
    nems = make_nemeses(["partition", "lossy", "pause", "kill", "clock"], {})
    d = default_durations(nems, EtcdTarget().timing)
    limit = fitting_time_limit(d, 2.0, (1.0, 3.0), nems)
    # Four kinds take turns: a round of four of the longest faults, with their gaps. The
    # clock brackets their faults, but its own bands (5 election timeouts) still count.
    assert limit == math.ceil(2.0 + 3.0 + 4 * (d["clock"].longest_s + 3.0)) == 55.0
    for seed in range(5000, 5050):
        kinds = {p.nemesis for p in make_schedule(nems, seed, limit, durations=d)}
        assert {"partition", "lossy", "pause", "kill"} <= kinds  # every kind comes once
    # Alone, a nemesis fits three of its longest faults, as before.
    alone = make_nemeses(["pause"], {})
    assert fitting_time_limit(d, 2.0, (1.0, 3.0), alone) == fitting_time_limit(d, 2.0, (1.0, 3.0))

