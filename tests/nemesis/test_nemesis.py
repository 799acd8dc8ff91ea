"""Unit tests of the nemeses with a fake cluster: registry, schedule, partition rules,
pause/kill hooks, clock control files. Nothing here touches the machine's network; the
clock tests run the nemesis's real shell writer on files under tmp_path."""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness import options
from harness.backends.base import Node, RunResult
from harness.errors import ConfigError
from harness.nemesis import NEMESES, make_nemeses
from harness.nemesis._common import StartFailed
from harness.nemesis.base import FaultPlan, NemesisRefused
from harness.nemesis.clock import REFUSAL, WRITE_SH, ClockNemesis
from harness.nemesis.kill import KillNemesis
from harness.nemesis.partition import (
    CHAIN,
    UNBLOCK_SCRIPT,
    PartitionNemesis,
    cut_peers,
    partition_groups,
)
from harness.nemesis.pause import PauseNemesis
from harness.nemesis.schedule import MAX_PLANNED_FAULTS, ScheduleError, make_schedule
from harness.skewclock import Skew, SkewClock
from harness.testing.nemesis import HOST, FakeBackend, FakeCluster, FakeDaemon
from harness.wait import wait_until

# The fakes (FakeCluster over a recording FakeBackend) live in harness.testing.nemesis.


def plan(nemesis: str, mode: str, pick: int = 7, **params: Any) -> FaultPlan:
    return FaultPlan(nemesis, mode, at_s=0.0, duration_s=1.0, pick=pick, params=params)


# ----------------------------------------------------------------------------- registry


def test_registry_matches_option_names() -> None:
    assert set(NEMESES) == set(options.NEMESES) - set(options.SPECIAL_NEMESES)
    for name, cls in NEMESES.items():
        nem = cls()
        assert nem.name == name
        assert nem.modes


def test_make_nemeses_builds_in_order_with_settings() -> None:
    nems = make_nemeses(["clock", "partition"], {"clock": {"max_rate_skew": 0.1}})
    assert [n.name for n in nems] == ["clock", "partition"]
    assert isinstance(nems[0], ClockNemesis) and nems[0].max_rate_skew == 0.1
    assert make_nemeses(["none"], {}) == []
    # Settings of a known nemesis that is not selected are validated but allowed.
    assert [n.name for n in make_nemeses(["kill"], {"clock": {"processes": "candidate"}})] == [
        "kill"
    ]
    assert make_nemeses(["pause"], {"pause": {"modes": ["member"]}})[0].modes == ("member",)


@pytest.mark.parametrize(
    "names,settings,match",
    [
        (["clock"], {"clocks": {}}, r"unknown nemesis 'clocks'; expected one of partition"),
        (
            ["clock"],
            {"clock": {"max_skew": 1}},
            r"unknown key 'nemesis.clock.max_skew'.*max_rate_skew",
        ),
        (["kill"], {"clock": {"max_skew": 1}}, r"unknown key 'nemesis.clock.max_skew'"),
        (
            ["partition"],
            {"partition": {"modes": ["square"]}},
            r"key 'nemesis.partition.modes': expected .*halves",
        ),
        (
            ["clock"],
            {"clock": {"max_rate_skew": 2}},
            r"key 'nemesis.clock.max_rate_skew': expected a number in \(0, 0.9\], got 2",
        ),
        (
            ["clock"],
            {"clock": {"processes": "all"}},
            r"key 'nemesis.clock.processes': expected one of member",
        ),
        (
            ["clock"],
            {"clock": {"unbounded": "yes"}},
            r"key 'nemesis.clock.unbounded': expected true or false",
        ),
        (["clock"], {"clock": []}, r"key 'nemesis.clock': expected a mapping"),
        (
            ["pause"],
            {"pause": {"targets": []}},
            r"key 'nemesis.pause.targets': expected a non-empty list",
        ),
        (["dance"], {}, r"unknown nemesis 'dance'"),
        (["kill", "kill"], {}, r"named twice"),
    ],
)
def test_make_nemeses_rejects_mistakes(
    names: list[str], settings: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        make_nemeses(names, settings)


# ----------------------------------------------------------------------------- schedule


def all_nemeses() -> list[Any]:
    return make_nemeses(["partition", "pause", "kill", "clock", "lossy"], {})


def test_schedule_same_seed_same_plans_and_no_global_state() -> None:
    a = make_schedule(all_nemeses(), 42, 120.0)
    random.seed(1)  # global state must not matter
    random.random()
    b = make_schedule(all_nemeses(), 42, 120.0)
    assert a == b and len(a) > 5
    assert make_schedule(all_nemeses(), 43, 120.0) != a
    assert make_schedule(all_nemeses(), 42, 120.0, gap_s=(0.5, 0.5)) != a


def test_schedule_shape() -> None:
    limit = 90.0
    plans = make_schedule(all_nemeses(), 7, limit, warmup_s=3.0, gap_s=(1.0, 2.0))
    assert [p.at_s for p in plans] == sorted(p.at_s for p in plans)
    # Pause, kill, partition and lossy share one timeline (they take turns); the clock
    # brackets their faults (tests/nemesis/test_brackets.py).
    kinds = {"partition", "lossy", "pause", "kill"}
    own = [p for p in plans if p.nemesis in kinds]
    assert {p.nemesis for p in own} == kinds
    assert 3.0 <= own[0].at_s <= 5.0  # warm-up plus a seeded delay of up to one gap
    for prev, nxt in itertools.pairwise(own):
        # One fault of a timeline at a time, with a quiet gap between.
        assert nxt.at_s >= prev.at_s + prev.duration_s + 1.0 - 1e-6
        assert nxt.at_s <= prev.at_s + prev.duration_s + 2.0 + 1e-6
    last = own[-1]
    assert last.at_s + last.duration_s + 2.0 + 5.0 >= limit  # the last that fits
    assert {p.nemesis for p in plans} == kinds | {"clock"}
    # A single nemesis keeps the timeline (and the plans) it has on its own.
    alone = make_schedule(make_nemeses(["pause"], {}), 7, limit, warmup_s=3.0, gap_s=(1.0, 2.0))
    assert alone and all(p.nemesis == "pause" for p in alone)
    mixed = make_schedule(
        make_nemeses(["pause", "clock"], {}), 7, limit, warmup_s=3.0, gap_s=(1.0, 2.0)
    )
    assert [p for p in mixed if p.nemesis == "pause"] == alone
    clock = make_schedule(make_nemeses(["clock"], {}), 7, limit, warmup_s=3.0, gap_s=(1.0, 2.0))
    assert clock and all(p.nemesis == "clock" for p in clock)
    for p in plans:
        assert 2.0 <= p.duration_s <= 5.0 or p.nemesis == "clock"
        assert p.at_s + p.duration_s < limit
        nem = next(n for n in all_nemeses() if n.name == p.nemesis)
        assert p.mode in nem.modes
        assert 0 <= p.pick < 2**32
        json.dumps(p.params)  # plans go into the run's configuration


def test_schedule_overlaps_different_nemeses_only() -> None:
    plans = make_schedule(make_nemeses(["partition", "clock"], {}), 5, 300.0)
    overlapping = [
        (a.nemesis, b.nemesis)
        for a, b in itertools.combinations(plans, 2)
        if a.at_s < b.at_s + b.duration_s and b.at_s < a.at_s + a.duration_s
    ]
    assert overlapping  # a clock skew during a partition happens
    assert all(x != y for x, y in overlapping)


def test_adding_a_nemesis_keeps_the_others_timelines() -> None:
    alone = make_schedule(make_nemeses(["partition"], {}), 11, 120.0)
    mixed = make_schedule(make_nemeses(["partition", "clock"], {}), 11, 120.0)
    assert [p for p in mixed if p.nemesis == "partition"] == alone


def test_schedule_covers_every_nemesis_and_mode() -> None:
    nems = all_nemeses()
    plans = make_schedule(nems, 3, 600.0)
    seen = {(p.nemesis, p.mode) for p in plans}
    assert seen == {(n.name, m) for n in nems for m in n.modes}
    # Params are drawn: pause/kill targets vary, clock params respect the envelope.
    assert len({p.params["target"] for p in plans if p.nemesis == "kill"}) > 2
    assert "all" in {p.params["target"] for p in plans if p.nemesis == "kill"}
    for p in plans:
        if p.nemesis == "clock" and p.mode == "bump":
            assert p.params["offset_ns"] > 0 and p.params["target"] == "one"


def test_schedule_edges() -> None:
    assert make_schedule([], 1, 100.0) == []
    assert make_schedule(all_nemeses(), 1, 5.0) == []  # warm-up + shortest fault > limit
    with pytest.raises(ValueError, match="duration_s"):
        make_schedule(all_nemeses(), 1, 10.0, duration_s=(0.0, 1.0))
    with pytest.raises(ValueError, match="gap_s"):
        make_schedule(all_nemeses(), 1, 10.0, gap_s=(3.0, 1.0))
    with pytest.raises(ValueError, match="twice"):
        make_schedule([PartitionNemesis(), PartitionNemesis()], 1, 10.0)


def test_a_fault_shorter_than_a_millisecond_is_refused_not_built_forever() -> None:
    # 0.4 ms rounded to 0 ms: the timeline never advanced and memory grew without bound.
    started = time.monotonic()
    with pytest.raises(ScheduleError, match=r"nemesis\.schedule\.duration_s .* 0\.001 <= low"):
        make_schedule(all_nemeses(), 1, 30.0, gap_s=(0.0, 0.0), duration_s=(0.0004, 0.0004))
    assert time.monotonic() - started < 1.0
    one_ms = make_schedule(
        [PartitionNemesis()], 1, 1.0, warmup_s=0.0, gap_s=(0.0, 0.0), duration_s=(0.001, 0.001)
    )
    assert one_ms and all(p.duration_s == 0.001 for p in one_ms)
    assert all(b.at_s > a.at_s for a, b in itertools.pairwise(one_ms))  # it advances


def test_too_many_planned_faults_are_refused_naming_the_keys() -> None:
    started = time.monotonic()
    with pytest.raises(ScheduleError, match=f"more than {MAX_PLANNED_FAULTS} faults") as info:
        make_schedule([PartitionNemesis()], 1, 3600.0, gap_s=(0.0, 0.0), duration_s=(0.001, 0.001))
    assert "nemesis.schedule.gap_s" in str(info.value)
    assert time.monotonic() - started < 5.0
    assert isinstance(info.value, ValueError)  # the runner's "bad input" (exit 2)
    # Just under the cap is built.
    plans = make_schedule(
        [PartitionNemesis()], 1, 9.0, warmup_s=0.0, gap_s=(0.0, 0.0), duration_s=(0.001, 0.001)
    )
    assert 8_000 < len(plans) <= MAX_PLANNED_FAULTS


# ----------------------------------------------------------------------------- partition


def names(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


def sees(groups: list[list[str]], ns: list[str]) -> dict[str, set[str]]:
    cut = cut_peers(groups, ns)
    return {x: set(ns) - set(cut[x]) for x in ns}


@pytest.mark.parametrize("n", [3, 5, 7])
@pytest.mark.parametrize("pick", range(6))
def test_partition_groups_properties(n: int, pick: int) -> None:
    ns = names(n)
    maj = n // 2 + 1
    for mode in ("halves", "one", "leader", "ring", "bridge"):
        groups, _ = partition_groups(mode, ns, pick, leader="n2")
        assert set().union(*map(set, groups)) == set(ns), mode  # groups cover every node
        view = sees(groups, ns)
        assert all(x in view[y] for x in ns for y in view[x]), "links are symmetric"
        assert any(len(v) < n for v in view.values()), f"{mode} cuts nothing"
        if mode == "halves":
            assert sorted(map(len, groups)) == [n - maj, maj]
            assert not set(groups[0]) & set(groups[1])
        if mode in ("one", "leader"):
            alone = groups[0][0]
            assert view[alone] == {alone} and all(view[x] == set(ns) - {alone} for x in groups[1])
            if mode == "leader":
                assert alone == "n2"
        if mode == "ring":
            assert all(len(v) >= maj for v in view.values()), "every node sees a majority"
            assert len({frozenset(v) for v in view.values()}) == n, "no two the same view"
        if mode == "bridge":
            [bridge] = set(groups[0]) & set(groups[1])
            assert view[bridge] == set(ns)


def test_partition_groups_are_seeded_and_leader_falls_back() -> None:
    ns = names(5)
    assert partition_groups("halves", ns, 1) == partition_groups("halves", ns, 1)
    assert len({str(partition_groups("halves", ns, p)[0]) for p in range(20)}) > 3
    groups, note = partition_groups("leader", ns, 3, leader=None)
    assert len(groups[0]) == 1 and note and "no leader known" in note
    _, note3 = partition_groups("ring", names(3), 1)
    assert note3 and "degenerates" in note3
    with pytest.raises(RuntimeError, match="at least 3 nodes"):
        partition_groups("one", names(1), 1)


def drops(backend: FakeBackend, node: str) -> tuple[set[str], set[str]]:
    """(sources dropped on INPUT, destinations dropped on OUTPUT) in `node`'s scripts."""
    src, dst = set(), set()
    for argv in backend.of(node, "iptables-restore"):
        assert argv[:2] == ["sh", "-c"]
        script = argv[2]
        assert "--noflush" in script and f":{CHAIN} - [0:0]" in script
        assert f"-I $c 1 -j {CHAIN}" in script and "for c in INPUT OUTPUT" in script
        src |= set(re.findall(rf"-A {CHAIN} -s (\S+) -j DROP", script))
        dst |= set(re.findall(rf"-A {CHAIN} -d (\S+) -j DROP", script))
    return src, dst


@pytest.mark.parametrize("mode", ["halves", "one", "leader", "ring", "bridge"])
@pytest.mark.parametrize("n", [3, 5])
def test_partition_rules_per_node(mode: str, n: int) -> None:
    cluster = FakeCluster(n, leader="n3")
    fault = PartitionNemesis().start(cluster, plan("partition", mode, pick=11))
    [(f, value)] = cluster.events
    assert f == "start-partition" and value["mode"] == mode
    groups = value["groups"]
    view = sees(groups, names(n))
    addr = {x.name: x.address for x in cluster.nodes}
    for x in names(n):
        src, dst = drops(cluster.backend, x)
        expected = {addr[y] for y in names(n) if y not in view[x]}
        assert src == expected and dst == expected, x
        assert HOST not in src | dst
        if not expected:
            assert cluster.backend.of(x) == []  # no rules where nothing is cut
    if mode == "leader":
        assert groups[0] == ["n3"]
    # Heal: every namespace loses its jumps and chain, then sockets to cut peers die.
    cluster.backend.calls.clear()
    fault.heal()
    for x in names(n):
        assert ["sh", "-c", UNBLOCK_SCRIPT] in cluster.backend.of(x)
        ss = cluster.backend.of(x, "ss -K")
        cut = [addr[y] for y in names(n) if y not in view[x]]
        if cut:
            [argv] = ss
            assert argv[:3] == ["ss", "-K", "-n"]
            assert [a for i, a in enumerate(argv) if i > 0 and argv[i - 1] == "dst"] == cut
            assert " or ".join(f"dst {a}" for a in cut) in " ".join(argv)
        else:
            assert ss == []
    assert cluster.events[-1] == ("stop-partition", value)
    # Idempotent: nothing runs and nothing is recorded the second time.
    cluster.backend.calls.clear()
    fault.heal()
    assert cluster.backend.calls == [] and len(cluster.events) == 2


def test_unblock_script_really_cleans(tmp_path: Path) -> None:
    """The heal script against a fake `iptables` on PATH that logs its arguments: it
    deletes both jumps until none is left, flushes and deletes the chain, and fails if
    the chain is still there."""
    log = tmp_path / "log"
    fake = tmp_path / "iptables"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in\n'
        f'  *"-D INPUT"*) n=$(grep -c "D INPUT" {log}); [ "$n" -le 2 ] ;;\n'
        '  *"-D OUTPUT"*) false ;;\n'
        f'  *"-S {CHAIN}"*) [ -e {tmp_path}/still ] ;;\n'
        "  *) true ;;\n"
        "esac\n"
    )
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    r = subprocess.run(["sh", "-c", UNBLOCK_SCRIPT], env=env, capture_output=True)
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines()
    assert lines.count(f"-w -D INPUT -j {CHAIN}") == 3  # two jumps removed, then none left
    assert lines.count(f"-w -D OUTPUT -j {CHAIN}") == 1
    assert f"-w -F {CHAIN}" in lines and f"-w -X {CHAIN}" in lines
    (tmp_path / "still").touch()
    assert subprocess.run(["sh", "-c", UNBLOCK_SCRIPT], env=env).returncode != 0


def test_partition_start_failing_halfway_is_healed_everywhere() -> None:
    cluster = FakeCluster(3)
    cluster.backend.fail[("n2", "iptables-restore")] = RunResult(1, "", "no chain for you")
    with pytest.raises(RuntimeError, match=r"n2.*no chain for you"):
        PartitionNemesis().start(cluster, plan("partition", "halves", pick=2))
    assert [f for f, _ in cluster.events] == ["start-partition", "stop-partition"]
    assert "no chain for you" in cluster.events[0][1]["error"]
    for x in names(3):
        assert ["sh", "-c", UNBLOCK_SCRIPT] in cluster.backend.of(x)


def test_partition_heal_failure_raises_and_retries(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster(3)
    fault = PartitionNemesis().start(cluster, plan("partition", "one", pick=5))
    cluster.backend.fail[("n1", "command -v iptables")] = RunResult(1, "", "busy")
    for x in names(3):
        cluster.backend.fail[(x, "ss -K")] = RunResult(1, "", "no sock_destroy")
    with pytest.raises(RuntimeError, match=r"n1.*busy"):
        fault.heal()
    assert [f for f, _ in cluster.events] == ["start-partition"]  # not healed yet
    del cluster.backend.fail[("n1", "command -v iptables")]
    with caplog.at_level(logging.WARNING):
        fault.heal()  # an ss failure is only logged
    assert "no sock_destroy" in caplog.text
    assert [f for f, _ in cluster.events] == ["start-partition", "stop-partition"]


def test_partition_never_drops_host_address() -> None:
    cluster = FakeCluster(3)
    cluster.nodes[1] = Node("n2", HOST, "ns-n2")  # a backend bug: a node with the host's
    with pytest.raises(RuntimeError, match="host address"):
        PartitionNemesis().start(cluster, plan("partition", "halves", pick=1))
    for x in names(3):
        src, dst = drops(cluster.backend, x)
        assert HOST not in src | dst
    # It failed before any rule went in, and still cleaned up every namespace.
    assert not any("iptables-restore" in a[-1] for _, a in cluster.backend.calls)
    assert [f for f, _ in cluster.events] == ["start-partition", "stop-partition"]


def test_partition_refusal() -> None:
    assert PartitionNemesis().refusal(FakeCluster(3)) is None
    reason = PartitionNemesis().refusal(FakeCluster(1))
    assert reason and "at least 3 nodes" in reason


# ----------------------------------------------------------------------------- pause


def test_pause_both_on_all_and_resume_same_daemons() -> None:
    cluster = FakeCluster(3)
    fault = PauseNemesis().start(cluster, plan("pause", "both", target="all"))
    daemons = [*cluster.members.values(), *cluster.candidates.values()]
    stopped = {d.node.name + d.name: d for d in daemons if d}
    assert len(stopped) == 6
    assert all(d.signals == [signal.SIGSTOP] for d in stopped.values())
    assert cluster.events == [
        ("pause", {"nodes": ["n1", "n2", "n3"], "processes": "both", "target": "all"})
    ]
    # A member restarted meanwhile is a new daemon: it must not get the SIGCONT.
    new = FakeDaemon("member", cluster.node("n1"))
    cluster.members["n1"] = new
    fault.heal()
    fault.heal()
    assert all(d.signals == [signal.SIGSTOP, signal.SIGCONT] for d in stopped.values())
    assert new.signals == []
    assert [f for f, _ in cluster.events] == ["pause", "resume"]


def test_pause_the_holder_not_the_server_leader() -> None:
    cluster = FakeCluster(3, leader="n2", holder="n3")
    PauseNemesis().start(cluster, plan("pause", "candidate", target="holder")).heal()
    assert cluster.candidates["n3"].signals == [signal.SIGSTOP, signal.SIGCONT]  # type: ignore[union-attr]
    assert cluster.candidates["n2"].signals == []  # type: ignore[union-attr]
    assert cluster.events[0][1]["nodes"] == ["n3"]

    cluster = FakeCluster(3, leader="n2", holder=None)
    PauseNemesis().start(cluster, plan("pause", "candidate", pick=5, target="holder")).heal()
    assert "no candidate holds the election" in cluster.events[0][1]["note"]


def test_pause_leader_candidate_and_skips() -> None:
    cluster = FakeCluster(3, leader="n2")
    fault = PauseNemesis().start(cluster, plan("pause", "candidate", target="leader"))
    assert cluster.candidates["n2"].signals == [signal.SIGSTOP]  # type: ignore[union-attr]
    assert cluster.members["n2"].signals == []  # type: ignore[union-attr]
    assert all(cluster.candidates[x].signals == [] for x in ("n1", "n3"))  # type: ignore[union-attr]
    cluster.candidates["n2"].exit = -9  # type: ignore[union-attr]  # died while paused
    fault.heal()
    assert cluster.events[-1][0] == "resume"
    assert any("n2 candidate" in s for s in cluster.events[-1][1]["skipped"])

    # Member down and no leader known: skipped, fallback said in the event.
    cluster = FakeCluster(3, leader=None)
    for x in names(3):
        cluster.members[x] = None
    PauseNemesis().start(cluster, plan("pause", "member", pick=3, target="leader")).heal()
    f, value = cluster.events[0]
    assert f == "pause" and "no leader known" in value["note"]
    assert value["skipped"] == [f"{value['nodes'][0]} member: not running"]


def test_node_choice_is_deterministic_and_sized() -> None:
    for target, size in [("one", 1), ("minority", 2), ("majority", 3), ("all", 5)]:
        chosen = set()
        for pick in range(10):
            c1 = FakeCluster(5)
            PauseNemesis().start(c1, plan("pause", "member", pick=pick, target=target)).heal()
            c2 = FakeCluster(5)
            PauseNemesis().start(c2, plan("pause", "member", pick=pick, target=target)).heal()
            assert c1.events == c2.events
            assert len(c1.events[0][1]["nodes"]) == size
            chosen.add(tuple(c1.events[0][1]["nodes"]))
        if target != "all":
            assert len(chosen) > 1  # the pick matters
    c = FakeCluster(5, leader="n4")
    PauseNemesis().start(c, plan("pause", "member", pick=1, target="follower")).heal()
    assert c.events[0][1]["nodes"] != ["n4"] and len(c.events[0][1]["nodes"]) == 1


# ----------------------------------------------------------------------------- kill


def test_kill_all_members_then_restart_all_in_the_recorded_order() -> None:
    cluster = FakeCluster(3)
    fault = KillNemesis().start(cluster, plan("kill", "member", target="all"))
    assert cluster.hooks == [("kill_member", x) for x in names(3)]
    [(f, recorded)] = cluster.events
    value = dict(recorded)
    order = value.pop("restart_order")
    assert (f, value) == (
        "kill",
        {"nodes": ["n1", "n2", "n3"], "processes": "member", "target": "all"},
    )
    assert sorted(order) == names(3) and order != names(3)  # pick 7: not node order
    fault.heal()
    fault.heal()
    assert cluster.hooks[3:] == [("start_member", x) for x in order]
    assert [f for f, _ in cluster.events] == ["kill", "restart"]


def test_power_cut_restart_order_is_seeded_and_varies() -> None:
    # After a power cut every node must get its turn to come back first: restarted in
    # node order, n1 always won the first term again and a forgetful elector went unseen.
    def order(pick: int) -> list[str]:
        cluster = FakeCluster(3)
        KillNemesis().start(cluster, plan("kill", "member", pick=pick, target="all")).heal()
        return [name for hook, name in cluster.hooks if hook == "start_member"]

    assert order(11) == order(11)
    firsts = {order(pick)[0] for pick in range(40)}
    assert firsts == set(names(3))
    one = FakeCluster(3)
    KillNemesis().start(one, plan("kill", "member", target="one"))
    assert "restart_order" not in one.events[0][1]


def test_kill_both_on_leader_restarts_member_first_and_retries() -> None:
    cluster = FakeCluster(3, leader="n3")
    fault = KillNemesis().start(cluster, plan("kill", "both", target="leader"))
    assert cluster.hooks == [("kill_member", "n3"), ("kill_candidate", "n3")]
    cluster.fail_hook.add(("start_candidate", "n3"))
    with pytest.raises(RuntimeError, match="n3 candidate"):
        fault.heal()
    cluster.fail_hook.clear()
    fault.heal()
    # The member is not started twice; the candidate is retried.
    assert cluster.hooks[2:] == [
        ("start_member", "n3"),
        ("start_candidate", "n3"),
        ("start_candidate", "n3"),
    ]
    assert [f for f, _ in cluster.events] == ["kill", "restart"]


def test_kill_failing_halfway_restarts_what_was_killed() -> None:
    cluster = FakeCluster(3)
    cluster.fail_hook.add(("kill_member", "n2"))
    with pytest.raises(RuntimeError, match="kill_member failed on n2"):
        KillNemesis().start(cluster, plan("kill", "member", target="all"))
    assert cluster.hooks == [
        ("kill_member", "n1"),
        ("kill_member", "n2"),
        ("start_member", "n1"),
        ("start_member", "n2"),
    ]
    assert [f for f, _ in cluster.events] == ["kill", "restart"]


# ----------------------------------------------------------------------------- clock


def clock_cluster(tmp_path: Path, **kw: Any) -> FakeCluster:
    return FakeCluster(3, backend=FakeBackend(execute_writes=True), clock_dir=tmp_path, **kw)


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_clock_bump_writes_and_heal_keeps_the_clock_continuous(tmp_path: Path) -> None:
    cluster = clock_cluster(tmp_path)
    nem = ClockNemesis({"processes": "both"})
    fault = nem.start(cluster, plan("clock", "bump", pick=1, target="one", offset_ns=200_000_000))
    [(f, value)] = cluster.events
    assert f == "clock-skew" and value["offset_ns"] == 200_000_000 and value["mode"] == "bump"
    [node] = value["nodes"]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{node}-candidate.json", f"{node}-member.json"]  # no temp file left
    for kind in ("member", "candidate"):
        assert read(tmp_path / f"{node}-{kind}.json") == {
            "offset_ns": 200_000_000,
            "rate": 1.0,
            "since_ns": 0,
        }
    # A SkewClock reading the file sees the jump.
    clock = SkewClock(tmp_path / f"{node}-member.json")
    assert clock.now_ns() - time.monotonic_ns() > 190_000_000
    fault.heal()
    # Bounded: the offset stays (a reset would move the clock back by 200 ms).
    assert read(tmp_path / f"{node}-member.json")["offset_ns"] == 200_000_000
    assert cluster.events[-1][1]["kept_offset_ns"] == {
        f"{node}/member": 200_000_000,
        f"{node}/candidate": 200_000_000,
    }
    # A second bump on the same node builds on the kept offset.
    nem.start(cluster, plan("clock", "bump", pick=1, target="one", offset_ns=50_000_000)).heal()
    assert read(tmp_path / f"{node}-member.json")["offset_ns"] == 250_000_000


def test_clock_rate_slow_on_leader_then_unbounded_reset(tmp_path: Path) -> None:
    cluster = clock_cluster(tmp_path, leader="n2")
    nem = ClockNemesis()
    before = time.monotonic_ns()
    fault = nem.start(cluster, plan("clock", "rate", target="leader", rate=0.8))
    data = read(tmp_path / "n2-member.json")
    assert data["rate"] == 0.8 and data["offset_ns"] == 0
    assert before <= data["since_ns"] <= time.monotonic_ns()
    assert not (tmp_path / "n2-candidate.json").exists()  # processes: member (default)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n2-member.json"]
    time.sleep(0.1)
    fault.heal()
    kept = read(tmp_path / "n2-member.json")
    assert kept["rate"] == 1.0
    # 0.1 s and more at rate 0.8: at least 20 ms behind, kept as a negative offset.
    assert -200_000_000 < kept["offset_ns"] <= -20_000_000
    assert cluster.events[-1][1]["kept_offset_ns"]["n2/member"] == kept["offset_ns"]

    un = ClockNemesis({"unbounded": True})
    un.start(cluster, plan("clock", "rate", target="leader", rate=1.2)).heal()
    assert read(tmp_path / "n2-member.json") == {"offset_ns": 0, "rate": 1.0, "since_ns": 0}
    assert "kept_offset_ns" not in cluster.events[-1][1]


def test_clock_strobe_flips_and_heal_stops_the_thread(tmp_path: Path) -> None:
    cluster = clock_cluster(tmp_path, leader="n1")
    nem = ClockNemesis()
    fault = nem.start(
        cluster,
        plan("clock", "strobe", pick=4, target="follower", offset_ns=30_000_000, period_ms=20),
    )
    [node] = cluster.events[0][1]["nodes"]
    assert node != "n1"
    path = str(tmp_path / f"{node}-member.json")

    def writes_so_far() -> list[int]:
        return [json.loads(a[4])["offset_ns"] for _, a in cluster.backend.calls if a[-1] == path]

    # Waited for, not slept for: a loaded machine may run the strobe thread late.
    wait_until(lambda: len(writes_so_far()) >= 5, 10.0, "five strobe writes")
    writes = writes_so_far()
    assert set(writes) == {0, 30_000_000}
    assert all(a != b for a, b in itertools.pairwise(writes)), "flips alternate"
    fault.heal()
    assert not any(t.name == "clock-strobe" for t in threading.enumerate())
    n = len(cluster.backend.calls)
    time.sleep(0.1)
    assert len(cluster.backend.calls) == n, "no write after heal"
    assert read(Path(path))["rate"] == 1.0
    assert cluster.events[-1][0] == "clock-reset"


def test_clock_strobe_never_moves_a_new_leader_back(tmp_path: Path) -> None:
    cluster = clock_cluster(tmp_path, leader="n1")
    fault = ClockNemesis().start(
        cluster,
        plan("clock", "strobe", pick=4, target="follower", offset_ns=30_000_000, period_ms=10),
    )
    [node] = cluster.events[0][1]["nodes"]
    cluster.leader_name = node  # it wins an election while strobed
    time.sleep(0.05)
    path = str(tmp_path / f"{node}-member.json")
    cluster.backend.calls.clear()
    time.sleep(0.15)
    fault.heal()
    offsets = [json.loads(a[4])["offset_ns"] for _, a in cluster.backend.calls if a[-1] == path]
    assert offsets and set(offsets) == {30_000_000}


def test_clock_plan_params_envelope() -> None:
    rng = random.Random(5)
    bounded = ClockNemesis({"max_rate_skew": 0.1, "max_bump_ms": 100})
    for _ in range(200):
        bump = bounded.plan_params("bump", rng)
        assert bump["target"] == "one" and 25_000_000 <= bump["offset_ns"] <= 100_000_000
        strobe = bounded.plan_params("strobe", rng)
        assert strobe["target"] == "follower" and strobe["period_ms"] == 100
        rate = bounded.plan_params("rate", rng)
        if rate["target"] == "leader":
            assert 0.9 <= rate["rate"] < 1.0
        else:
            assert rate["target"] == "follower" and 1.0 < rate["rate"] <= 1.1
    wild = ClockNemesis({"unbounded": True})
    bumps = [wild.plan_params("bump", rng) for _ in range(100)]
    assert min(b["offset_ns"] for b in bumps) < 0 < max(b["offset_ns"] for b in bumps)
    assert {"leader", "all"} <= {b["target"] for b in bumps}
    assert "leader" in {wild.plan_params("strobe", rng)["target"] for _ in range(100)}


def test_clock_refusal(tmp_path: Path) -> None:
    no_member_clock = clock_cluster(tmp_path, member_clock=False)
    assert ClockNemesis().refusal(no_member_clock) == REFUSAL
    assert "use processes: candidate" in REFUSAL and "vDSO" in REFUSAL
    assert ClockNemesis({"processes": "both"}).refusal(no_member_clock) == REFUSAL
    assert ClockNemesis({"processes": "candidate"}).refusal(no_member_clock) is None
    assert ClockNemesis().refusal(clock_cluster(tmp_path)) is None
    with pytest.raises(NemesisRefused, match="cannot skew the members"):
        ClockNemesis().start(no_member_clock, plan("clock", "bump", target="one", offset_ns=1))
    assert list(tmp_path.iterdir()) == []
    # Candidates alone can be skewed on such a target.
    ClockNemesis({"processes": "candidate"}).start(
        no_member_clock, plan("clock", "bump", target="all", offset_ns=5)
    ).heal()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{x}-candidate.json" for x in names(3)]


def test_clock_write_failure_is_healed(tmp_path: Path) -> None:
    cluster = clock_cluster(tmp_path)
    cluster.backend.fail[("n3", WRITE_SH)] = RunResult(1, "", "read-only file system")
    with pytest.raises(StartFailed, match=r"read-only.*undoing it failed too") as info:
        ClockNemesis().start(cluster, plan("clock", "bump", target="all", offset_ns=10))
    assert [f for f, _ in cluster.events] == ["clock-skew"]  # n3's reset failed too
    assert "read-only" in cluster.events[0][1]["error"]
    del cluster.backend.fail[("n3", WRITE_SH)]
    info.value.heal()  # the runner's retry
    assert [f for f, _ in cluster.events] == ["clock-skew", "clock-reset"]
    assert cluster.events[-1][1]["kept_offset_ns"] == {
        "n1/member": 10,
        "n2/member": 10,
        "n3/member": 0,
    }
    assert Skew.from_json((tmp_path / "n3-member.json").read_text()) == Skew()


def test_clock_rate_on_the_holder_is_slow() -> None:
    nemesis = ClockNemesis({"rate_targets": ["holder"], "max_rate_skew": 0.3})
    rng = random.Random(3)
    for _ in range(20):
        params = nemesis.plan_params("rate", rng)
        assert params["target"] == "holder" and 0.7 <= params["rate"] < 1.0
    with pytest.raises(ValueError, match="rate_targets"):
        ClockNemesis({"rate_targets": ["boss"]})


def test_partition_isolates_the_holder() -> None:
    ns = names(5)
    groups, note = partition_groups("holder", ns, 3, leader="n4")
    assert groups == [["n4"], ["n1", "n2", "n3", "n5"]] and note is None
    groups, note = partition_groups("holder", ns, 3, leader=None)
    assert len(groups[0]) == 1 and note and "no holder known" in note
    # Holder is opt-in; the partial failures of real outages are in the default mix.
    assert PartitionNemesis().modes == (
        "halves", "one", "leader", "ring", "bridge", "one-link", "one-direction"
    )  # fmt: skip
    assert "holder" in PartitionNemesis({"modes": ["holder"]}).modes
    from harness.targets.etcd import EtcdTarget

    assert "holder" in EtcdTarget().nemesis_defaults["partition"]["modes"]
