"""A clock in a run with node faults brackets them (nemesis/schedule.py): each clock fault
begins shortly before one node fault and ends shortly after it, one at a time, and the
one around a cut of the leader's (or holder's) links slows that node's clock from the
strong end of the envelope; around pauses and kills it is drawn as usual. Alone, or with
no node timeline, the clock keeps a timeline of its own."""

from __future__ import annotations

import itertools
import random

import pytest

from harness.nemesis import make_nemeses
from harness.nemesis.base import BracketsFaults, FaultPlan, brackets_in
from harness.nemesis.clock import BRACKET_SKEW, ClockNemesis
from harness.nemesis.durations import default_durations
from harness.nemesis.schedule import AIMS, BRACKET_LEAD_S, BRACKET_TAIL_S, make_schedule
from harness.targets.reference import ReferenceTarget

NODE = {"partition", "pause", "kill", "lossy"}


def _split(plans: list[FaultPlan]) -> tuple[list[FaultPlan], list[FaultPlan]]:
    return [p for p in plans if p.nemesis == "clock"], [p for p in plans if p.nemesis in NODE]


def _bracketed(clock: FaultPlan, node: list[FaultPlan], limit: float = 60.0) -> FaultPlan:
    """The node fault that `clock` brackets (exactly one). Its tail is 0.2-0.5 s, or
    shorter when the clock fault ends at the time limit."""
    end = clock.at_s + clock.duration_s

    def tail_ok(tail: float) -> bool:
        if abs(end - (limit - 0.001)) < 1e-6:
            return 0 < tail <= BRACKET_TAIL_S[1] + 1e-6
        return BRACKET_TAIL_S[0] - 1e-6 <= tail <= BRACKET_TAIL_S[1] + 1e-6

    inside = [
        n
        for n in node
        if BRACKET_LEAD_S[0] - 1e-6 <= n.at_s - clock.at_s <= BRACKET_LEAD_S[1] + 1e-6
        and tail_ok(end - (n.at_s + n.duration_s))
    ]
    assert len(inside) == 1, (clock, inside)
    return inside[0]


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize(
    "names", [["clock", "partition"], ["partition", "pause", "kill", "clock", "lossy"]]
)
def test_every_clock_fault_brackets_one_node_fault(seed: int, names: list[str]) -> None:
    nems = make_nemeses(names, {})
    plans = make_schedule(
        nems, seed, 60.0, durations=default_durations(nems, ReferenceTarget().timing)
    )
    clock, node = _split(plans)
    assert clock and node
    for a, b in itertools.pairwise(clock):
        assert b.at_s > a.at_s + a.duration_s  # one clock fault at a time
    around = [_bracketed(c, node) for c in clock]
    assert len({id(n) for n in around}) == len(around)
    for c, n in zip(clock, around, strict=True):
        assert c.at_s + c.duration_s < 60.0
        assert c.at_s + c.duration_s > n.at_s + n.duration_s
        if n.mode == "leader":  # a partition or lossy links of the leader
            # The node that loses the leadership runs slow, at 0.9 x max skew or more.
            assert c.mode == "rate" and c.params["target"] == "leader"
            assert 0.8 - 1e-9 <= c.params["rate"] <= 1 - BRACKET_SKEW * 0.2 + 1e-9


def test_most_node_faults_are_bracketed_and_every_leader_cut() -> None:
    nems = make_nemeses(["clock", "partition"], {})
    d = default_durations(nems, ReferenceTarget().timing)
    bracketed = total = cuts = cut_bracketed = 0
    for seed in range(100):
        clock, node = _split(make_schedule(nems, seed, 30.0, durations=d))
        around = {id(_bracketed(c, node, 30.0)) for c in clock}
        total += len(node)
        bracketed += len(around)
        for n in node:
            if n.mode == "leader":
                cuts += 1
                cut_bracketed += id(n) in around
    # The default gaps (1-3 s) leave room for a bracket (0.4-1 s) around most faults.
    assert bracketed >= 0.8 * total
    assert cuts > 100 and cut_bracketed >= 0.8 * cuts


def test_the_node_timeline_is_the_same_with_or_without_the_clock() -> None:
    for seed in range(10):
        alone = make_schedule(make_nemeses(["partition", "kill"], {}), seed, 60.0)
        mixed = make_schedule(make_nemeses(["partition", "kill", "clock"], {}), seed, 60.0)
        assert [p for p in mixed if p.nemesis != "clock"] == alone


def test_without_node_faults_the_clock_keeps_its_own_timeline() -> None:
    nems = make_nemeses(["clock"], {})
    assert brackets_in(nems) == {}
    plans = make_schedule(nems, 3, 60.0)
    assert len(plans) > 5
    for a, b in itertools.pairwise(plans):
        assert b.at_s >= a.at_s + a.duration_s + 1.0 - 1e-6  # its own gaps
    with_nodes = make_nemeses(["clock", "pause"], {})
    assert brackets_in(with_nodes) == {"clock": "node"}


def test_bracket_params_slow_the_aimed_node_within_the_settings() -> None:
    clock = ClockNemesis({"max_rate_skew": 0.4, "min_rate_skew": 0.1})
    assert isinstance(clock, BracketsFaults)
    rng = random.Random(1)
    rates = []
    for _ in range(200):
        got = clock.bracket_params("leader", rng)
        assert got is not None
        mode, params = got
        assert mode == "rate" and params["target"] == "leader"
        assert params["processes"] == "member"
        rates.append(params["rate"])
    assert min(rates) >= 0.6 - 1e-9
    assert max(rates) <= 1 - BRACKET_SKEW * 0.4 + 1e-9
    assert max(rates) - min(rates) > 0.02  # drawn, not fixed
    # A node whose rate the settings do not skew, or no `rate` mode: drawn as usual.
    assert clock.bracket_params("holder", rng) is None
    assert ClockNemesis({"rate_targets": ["holder"]}).bracket_params("leader", rng) is None
    assert ClockNemesis({"modes": ["bump"]}).bracket_params("leader", rng) is None
    assert set(AIMS) == {"leader", "holder"}


def test_etcd_style_settings_slow_the_holder_around_a_cut_of_the_holder() -> None:
    settings = {
        "clock": {"processes": "candidate", "rate_targets": ["holder", "follower"]},
        "partition": {"modes": ["halves", "leader", "holder"]},
    }
    nems = make_nemeses(["clock", "partition"], settings)
    seen = {"holder": 0, "leader": 0}
    for seed in range(20):
        clock, node = _split(make_schedule(nems, seed, 60.0))
        for c in clock:
            n = _bracketed(c, node)
            if n.mode == "holder":
                seen["holder"] += 1
                assert c.mode == "rate" and c.params["target"] == "holder"
                assert c.params["processes"] == "candidate" and c.params["rate"] < 1
            elif n.mode == "leader":
                # `leader` is not among these rate targets: an ordinary clock fault.
                seen["leader"] += 1
                assert c.params.get("target") != "leader"
    assert seen["holder"] > 10 and seen["leader"] > 10


def test_pauses_and_kills_of_the_leader_get_ordinary_clock_faults() -> None:
    nems = make_nemeses(["clock", "pause", "kill"], {})
    modes: dict[str, int] = {}
    for seed in range(20):
        clock, node = _split(make_schedule(nems, seed, 60.0))
        for c in clock:
            if _bracketed(c, node).params["target"] in AIMS:
                modes[c.mode] = modes.get(c.mode, 0) + 1
    # Bumps and strobes keep coming around them (a follower's jumping clock starts
    # spurious elections), not only slow leader rates.
    assert modes.get("bump", 0) > 10 and modes.get("strobe", 0) > 10


def test_a_fault_near_the_time_limit_is_bracketed_with_a_shorter_tail() -> None:
    nems = make_nemeses(["clock", "partition"], {})
    shrunk = 0
    for seed in range(200):
        plans = make_schedule(nems, seed, 20.0)
        clock, node = _split(plans)
        last = node[-1]
        ends = [c for c in clock if abs(c.at_s + c.duration_s - 19.999) < 1e-6]
        if ends:
            assert _bracketed(ends[0], node, 20.0) is last
            shrunk += 1
    assert shrunk > 5
