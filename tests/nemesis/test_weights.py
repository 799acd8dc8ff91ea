"""Target weights of the kill and pause nemeses: validated settings, drawn from a
heaviest-first bag, so that a 30 s run reaches the holder, the leader and a power cut."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.errors import ConfigError
from harness.nemesis import make_nemeses
from harness.nemesis.durations import default_durations, fitting_time_limit
from harness.nemesis.schedule import make_schedule
from harness.targets.etcd import EtcdTarget
from harness.targets.reference import ReferenceTarget


@pytest.mark.parametrize("name", ["kill", "pause"])
def test_default_weights_favour_holder_leader_and_all(name: str) -> None:
    nem = make_nemeses([name], {})[0]
    weights = nem.target_weights  # type: ignore[attr-defined]
    assert {t: w for t, w in weights.items() if w == 3} == {"holder": 3, "leader": 3, "all": 3}
    assert {t for t, w in weights.items() if w == 1} == {"one", "follower", "minority", "majority"}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"everywhere": 2}, "nemesis.kill.weights.everywhere"),
        ({"all": -1}, "nemesis.kill.weights.all"),
        ({"all": 1.5}, "nemesis.kill.weights.all"),
        ({"all": 101}, "an integer from 0 to 100"),
        ("all", "nemesis.kill.weights"),
    ],
)
def test_bad_weights_are_refused_naming_the_key(weights: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        make_nemeses(["kill"], {"kill": {"weights": weights}})


def test_weights_of_the_chosen_targets_cannot_all_be_zero() -> None:
    with pytest.raises(ConfigError, match="weighs 0"):
        make_nemeses(
            ["kill"], {"kill": {"targets": ["all", "one"], "weights": {"all": 0, "one": 0}}}
        )


def test_targets_come_in_proportion_to_their_weights() -> None:
    nems = make_nemeses(["kill"], {"kill": {"weights": {"holder": 5, "one": 0, "all": 2}}})
    plans = make_schedule(nems, 5010, 3000.0, duration_s=(1.0, 1.0), gap_s=(1.0, 1.0))
    counts = Counter(p.params["target"] for p in plans)
    assert "one" not in counts  # weight 0: never drawn
    per_round = {"holder": 5, "leader": 3, "all": 2, "follower": 1, "minority": 1, "majority": 1}
    rounds = len(plans) // sum(per_round.values())
    for target, weight in per_round.items():
        assert abs(counts[target] - rounds * weight) <= weight  # a partial last round at most


@pytest.mark.parametrize("name", ["kill", "pause"])
def test_the_first_faults_reach_holder_leader_and_a_power_cut(name: str) -> None:
    nems = make_nemeses([name], {})
    d = default_durations(nems, EtcdTarget().timing)
    limit = fitting_time_limit(d, 2.0, (1.0, 3.0))  # the run's default time limit
    for seed in range(5000, 5100):
        plans = make_schedule(nems, seed, limit, durations=d)
        first = plans[:3]
        assert {p.params["target"] for p in first} == {"holder", "leader", "all"}
        # Each heavy target's first fault is the whole node, past the bound.
        assert all(p.mode == "both" and p.duration_s >= d[name].long[0] for p in first)


def test_a_30_s_reference_run_reaches_every_heavy_target_and_kills_all_members() -> None:
    nems = make_nemeses(["kill"], {})
    d = default_durations(nems, ReferenceTarget().timing)
    for seed in range(5000, 5200):
        plans = make_schedule(nems, seed, 30.0, durations=d)
        targets = {p.params["target"] for p in plans}
        assert {"holder", "leader", "all"} <= targets
        assert any(p.params["target"] == "all" and p.mode != "candidate" for p in plans)


def test_partitions_isolate_the_leader_first_and_three_times_a_round() -> None:
    nems = make_nemeses(["partition"], {})
    assert nems[0].mode_weights["leader"] == 3  # type: ignore[attr-defined]
    for seed in range(5000, 5050):
        plans = make_schedule(nems, seed, 3000.0, duration_s=(1.0, 1.0), gap_s=(1.0, 1.0))
        assert plans[0].mode == "leader"  # the heaviest layer of a round comes first
        counts = Counter(p.mode for p in plans)
        rounds = len(plans) // 9  # leader 3 + six other modes once
        assert abs(counts["leader"] - 3 * rounds) <= 3
        assert abs(counts["one-link"] - rounds) <= 1


def test_partition_mode_weights_are_settings_checked_by_key() -> None:
    nems = make_nemeses(["partition"], {"partition": {"weights": {"leader": 0, "halves": 2}}})
    plans = make_schedule(nems, 5011, 600.0, duration_s=(1.0, 1.0), gap_s=(1.0, 1.0))
    assert "leader" not in {p.mode for p in plans} and plans[0].mode == "halves"
    with pytest.raises(ConfigError, match=r"nemesis\.partition\.weights\.boss"):
        make_nemeses(["partition"], {"partition": {"weights": {"boss": 2}}})
    with pytest.raises(ConfigError, match="weighs 0"):
        make_nemeses(["partition"], {"partition": {"modes": ["leader"], "weights": {"leader": 0}}})
