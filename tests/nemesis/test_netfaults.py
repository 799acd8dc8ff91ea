"""Unit tests of the partial network faults with a fake cluster: partition's one-link and
one-direction modes (node choice, rules per node, heal), the lossy nemesis (link choice,
rules and qdiscs per node, settings, the refusal's probe, heal), their explicit-schedule
parameters and report labels. The shell scripts that must really clean up run against
fake `iptables` and `tc` programs on PATH; nothing here touches the machine's network."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import RunResult
from harness.errors import ConfigError
from harness.nemesis import make_nemeses
from harness.nemesis.base import FaultPlan
from harness.nemesis.explicit import parse_fault
from harness.nemesis.lossy import (
    CHAIN as LOSSY_CHAIN,
)
from harness.nemesis.lossy import (
    HANDLE,
    PROBE_EXIT,
    LossyNemesis,
    heal_script,
    loss_script,
    lossy_links,
    peers_of,
    slow_script,
)
from harness.nemesis.partition import (
    CHAIN,
    UNBLOCK_SCRIPT,
    PartitionNemesis,
    block_script,
    cut_peers,
    one_direction_node,
    partition_groups,
)
from harness.nemesis.schedule import ScheduleError, make_schedule
from harness.reports.timeline import fault_label
from harness.testing.nemesis import HOST, FakeBackend, FakeCluster


def plan(nemesis: str, mode: str, pick: int = 7, **params: Any) -> FaultPlan:
    return FaultPlan(nemesis, mode, at_s=0.0, duration_s=1.0, pick=pick, params=params)


def names(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


def rules(backend: FakeBackend, node: str, chain: str = CHAIN) -> tuple[set[str], set[str]]:
    """The addresses `node` drops packets from (-s) and to (-d), from its scripts."""
    src, dst = set(), set()
    for argv in backend.of(node, "iptables-restore"):
        src |= set(re.findall(rf"-A {chain} -s (\S+) ", argv[2]))
        dst |= set(re.findall(rf"-A {chain} -d (\S+) ", argv[2]))
    return src, dst


# ------------------------------------------------------------------ partition one-link


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("pick", range(6))
def test_one_link_cuts_exactly_leader_and_one_follower(n: int, pick: int) -> None:
    ns = names(n)
    groups, note = partition_groups("one-link", ns, pick, leader="n2")
    assert note is None
    cut = cut_peers(groups, ns)
    cut_pairs = {tuple(sorted((x, y))) for x in ns for y in cut[x]}
    [(a, b)] = cut_pairs  # one link, both ways
    assert "n2" in (a, b)
    for x in ns:  # every other node still sees everyone
        if x not in (a, b):
            assert cut[x] == []


def test_one_link_follower_by_pick_and_leader_fallback() -> None:
    ns = names(5)
    followers = set()
    for pick in range(40):
        groups, _ = partition_groups("one-link", ns, pick, leader="n1")
        cut = cut_peers(groups, ns)
        followers |= set(cut["n1"])
    assert followers == {"n2", "n3", "n4", "n5"}  # the pick reaches every follower
    groups, note = partition_groups("one-link", ns, 3, leader=None)
    assert note and "no leader known" in note
    assert partition_groups("one-link", ns, 3, leader=None) == (groups, note)  # seeded


def test_one_link_start_rules_only_on_its_two_ends() -> None:
    cluster = FakeCluster(3, leader="n3")
    fault = PartitionNemesis({"modes": ["one-link"]}).start(cluster, plan("partition", "one-link"))
    [(f, value)] = cluster.events
    assert f == "start-partition" and value["mode"] == "one-link"
    a, b = value["link"]
    assert fault.description == f"partition one-link: {a} x {b} cut"
    assert "n3" in (a, b)
    addr = {x.name: x.address for x in cluster.nodes}
    for x, y in ((a, b), (b, a)):
        assert rules(cluster.backend, x) == ({addr[y]}, {addr[y]})
    third = next(x for x in names(3) if x not in (a, b))
    assert cluster.backend.of(third) == []
    cluster.backend.calls.clear()
    fault.heal()
    for x in names(3):
        assert ["sh", "-c", UNBLOCK_SCRIPT] in cluster.backend.of(x)
    assert cluster.backend.of(third, "ss -K") == []  # its sockets were never cut
    assert cluster.events[-1] == ("stop-partition", value)


# ------------------------------------------------------------- partition one-direction


@pytest.mark.parametrize("direction", ["out", "in"])
def test_one_direction_drops_one_way_on_one_node(direction: str) -> None:
    cluster = FakeCluster(3)
    nem = PartitionNemesis({"modes": ["one-direction"]})
    fault = nem.start(cluster, plan("partition", "one-direction", pick=4, direction=direction))
    node = one_direction_node(names(3), 4)
    [(_, value)] = cluster.events
    assert value == {
        "mode": "one-direction",
        "node": node,
        "direction": direction,
        "nodes": [node],
    }
    others = {x.address for x in cluster.nodes if x.name != node}
    src, dst = rules(cluster.backend, node)
    assert (src, dst) == ((others, set()) if direction == "in" else (set(), others))
    for x in names(3):
        if x != node:
            assert cluster.backend.of(x) == []  # the others keep their rules untouched
    cluster.backend.calls.clear()
    fault.heal()
    # Heal resets every stale connection on both sides: the node's to all, the others' to it.
    addr = {x.name: x.address for x in cluster.nodes}
    for x in names(3):
        [ss] = cluster.backend.of(x, "ss -K")
        want = sorted(others) if x == node else [addr[node]]
        assert sorted(a for i, a in enumerate(ss) if ss[i - 1] == "dst") == want


def test_one_direction_node_is_seeded_and_covers_all() -> None:
    ns = names(3)
    assert one_direction_node(ns, 9) == one_direction_node(ns, 9)
    assert {one_direction_node(ns, p) for p in range(30)} == set(ns)


def test_one_direction_plan_params_and_settings() -> None:
    nem = PartitionNemesis({"modes": ["one-direction", "halves"], "directions": ["in"]})
    rng = random.Random(1)
    assert nem.plan_params("one-direction", rng) == {"direction": "in"}
    assert nem.plan_params("halves", rng) == {}
    both = PartitionNemesis({"modes": ["one-direction"]})
    drawn = {both.plan_params("one-direction", rng)["direction"] for _ in range(30)}
    assert drawn == {"out", "in"}
    with pytest.raises(ConfigError, match=r"nemesis\.partition\.directions"):
        PartitionNemesis({"directions": ["sideways"]})
    with pytest.raises(RuntimeError, match="direction must be one of"):
        both.start(FakeCluster(3), plan("partition", "one-direction", direction="up"))


def test_partial_modes_are_in_the_default_mix_and_only_one_direction_draws() -> None:
    assert {"one-link", "one-direction"} <= set(PartitionNemesis().modes)
    plans = make_schedule([PartitionNemesis()], seed=5, time_limit_s=600)
    assert {"one-link", "one-direction"} <= {p.mode for p in plans}
    # Only one-direction draws a parameter (its direction); every other mode draws none.
    for p in plans:
        assert p.params == ({"direction": p.params["direction"]} if p.mode == "one-direction"
                            else {})  # fmt: skip
    # Named modes without the new ones draw no parameters at all.
    old = make_schedule([PartitionNemesis({"modes": ["halves", "leader"]})], 5, 60)
    assert all(p.params == {} for p in old)


def test_block_script_directions() -> None:
    both = block_script(["10.0.0.2"])
    assert "-s 10.0.0.2 -j DROP" in both and "-d 10.0.0.2 -j DROP" in both
    out = block_script(["10.0.0.2"], direction="out")
    assert "-d 10.0.0.2 -j DROP" in out and "-s 10.0.0.2" not in out
    inn = block_script(["10.0.0.2"], direction="in")
    assert "-s 10.0.0.2 -j DROP" in inn and "-d 10.0.0.2" not in inn
    with pytest.raises(ValueError, match="direction"):
        block_script(["10.0.0.2"], direction="up")


# ------------------------------------------------------------------------------ lossy


def test_lossy_links_per_mode() -> None:
    ns = names(3)
    assert lossy_links("all", ns, 1)[0] == [("n1", "n2"), ("n1", "n3"), ("n2", "n3")]
    links, note = lossy_links("leader", ns, 1, leader="n2")
    assert links == [("n1", "n2"), ("n2", "n3")] and note is None
    links, note = lossy_links("one-link", ns, 1, leader="n3")
    assert len(links) == 1 and "n3" in links[0] and note is None
    links, note = lossy_links("one-link", ns, 1)
    assert len(links) == 1 and note and "no leader known" in note
    centres = {lossy_links("one", names(4), p)[0][0] for p in range(30)}
    assert len(centres) > 1  # the pick chooses the node
    with pytest.raises(RuntimeError, match="at least 2 nodes"):
        lossy_links("all", ["n1"], 1)
    assert peers_of([("n1", "n2"), ("n2", "n3")], ns) == {
        "n1": ["n2"],
        "n2": ["n1", "n3"],
        "n3": ["n2"],
    }


def test_lossy_start_drops_incoming_on_each_end_and_heals_everywhere() -> None:
    cluster = FakeCluster(3, leader="n1")
    nem = LossyNemesis({"modes": ["leader"], "probability": [0.3, 0.3]})
    p = nem.plan_params("leader", random.Random(2))["probability"]
    assert p == 0.3
    fault = nem.start(cluster, plan("lossy", "leader", probability=p))
    [(f, value)] = cluster.events
    assert f == "start-lossy"
    assert value == {
        "mode": "leader",
        "links": [["n1", "n2"], ["n1", "n3"]],
        "nodes": ["n1", "n2", "n3"],
        "probability": 0.3,
    }
    addr = {x.name: x.address for x in cluster.nodes}
    want = {"n1": {addr["n2"], addr["n3"]}, "n2": {addr["n1"]}, "n3": {addr["n1"]}}
    for x in names(3):
        [argv] = cluster.backend.of(x, "iptables-restore")
        script = argv[2]
        # Incoming only, each once: each direction of a link loses p, not 1 - (1 - p)^2.
        got = set(re.findall(rf"-A {LOSSY_CHAIN} -s (\S+) -m statistic", script))
        assert got == want[x] and "-d " not in script
        assert "--mode random --probability 0.300000 -j DROP" in script
        assert f"-I INPUT 1 -j {LOSSY_CHAIN}" in script and "OUTPUT" not in script
        assert "tc " not in script  # no slow link asked for
        assert HOST not in re.findall(r"-s (\S+) ", script)
    cluster.backend.calls.clear()
    fault.heal()
    fault.heal()
    for x in names(3):
        assert cluster.backend.of(x) == [["sh", "-c", heal_script()]]
    assert cluster.events[-1] == ("stop-lossy", value)


def test_lossy_slow_link_shapes_only_the_peers() -> None:
    cluster = FakeCluster(3, leader="n1")
    nem = LossyNemesis(
        {"modes": ["one-link"], "slow": {"rate_kbit": 256, "burst_bytes": 4000, "latency_ms": 80}}
    )
    nem.start(cluster, plan("lossy", "one-link", pick=3, probability=0.1))
    value = cluster.events[0][1]
    assert value["slow"] == {"rate_kbit": 256, "burst_bytes": 4000, "latency_ms": 80}
    [[a, b]] = value["links"]
    addr = {x.name: x.address for x in cluster.nodes}
    for x, y in ((a, b), (b, a)):
        [argv] = cluster.backend.of(x, "iptables-restore")
        script = argv[2]
        assert f"root handle {HANDLE}: htb" in script
        assert "tbf rate 256kbit burst 4000 latency 80ms" in script
        assert re.findall(r"match ip dst (\S+)/32", script) == [addr[y]]


def test_lossy_failed_start_is_healed_and_recorded() -> None:
    cluster = FakeCluster(3)
    cluster.backend.fail[("n2", "iptables-restore")] = RunResult(1, "", "no statistic")
    with pytest.raises(RuntimeError, match=r"n2.*no statistic"):
        LossyNemesis().start(cluster, plan("lossy", "all", probability=0.2))
    assert [f for f, _ in cluster.events] == ["start-lossy", "stop-lossy"]
    assert "no statistic" in cluster.events[0][1]["error"]
    for x in names(3):
        assert ["sh", "-c", heal_script()] in cluster.backend.of(x)


def test_lossy_refusal_probes_once_and_refuses_with_the_reason() -> None:
    cluster = FakeCluster(3)
    assert LossyNemesis().refusal(cluster) is None
    [probe] = [a for _, a in cluster.backend.calls]
    assert "statistic" in probe[2] and "tc " not in probe[2]
    assert [n for n, _ in cluster.backend.calls] == ["n1"]
    slow = LossyNemesis({"slow": {"rate_kbit": 100}})
    cluster.backend.calls.clear()
    assert slow.refusal(cluster) is None
    assert "tbf" in cluster.backend.calls[0][1][2]
    missing = FakeCluster(3)
    missing.backend.fail[("n1", "LH-LOSSY-PROBE")] = RunResult(
        PROBE_EXIT, "the iptables statistic match is missing (xt_statistic)\n", ""
    )
    reason = LossyNemesis().refusal(missing)
    assert reason == (
        "lossy: cannot work on n1: the iptables statistic match is missing (xt_statistic)"
    )
    broken = FakeCluster(3)
    broken.backend.fail[("n1", "LH-LOSSY-PROBE")] = RunResult(1, "", "permission denied")
    assert "permission denied" in (LossyNemesis().refusal(broken) or "")
    remote = FakeCluster(3)
    remote.backend.shares_clock = False  # the ssh backend: real, shared hosts
    reason = LossyNemesis().refusal(remote)
    assert reason and "ssh" in reason and remote.backend.calls == []  # refused unprobed
    assert "at least 2 nodes" in (LossyNemesis().refusal(FakeCluster(1)) or "")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"probability": [0, 0.5]}, "probability[0]"),
        ({"probability": [0.5, 0.2]}, "probability[1]"),
        ({"probability": [0.1, 1.5]}, "probability[1]"),
        ({"probability": 0.3}, "probability"),
        ({"modes": ["everything"]}, "modes"),
        ({"slow": {"rate_kbit": 2}}, "slow.rate_kbit"),
        ({"slow": {"rate_kbit": 100, "burst_bytes": 100}}, "slow.burst_bytes"),
        ({"slow": {"rate_kbit": 1_000_000, "burst_bytes": 2000}}, "slow.burst_bytes"),
        ({"slow": {"rate_kbit": 100, "latency_ms": 0}}, "slow.latency_ms"),
        ({"slow": {"rate_kbit": 100, "speed": 3}}, "slow.speed"),
        ({"slow": {}}, "slow.rate_kbit"),
        ({"slow": "fast"}, "slow"),
        ({"loss": 0.2}, "loss"),
    ],
)
def test_lossy_settings_are_validated(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"nemesis.lossy.{key}")):
        make_nemeses(["lossy"], {"lossy": settings})


def test_lossy_settings_defaults_and_bounds() -> None:
    nem = LossyNemesis()
    assert nem.modes == ("one-link", "leader", "one", "all") and nem.slow is None
    assert nem.probability == (0.1, 0.5)
    assert LossyNemesis({"probability": [1, 1]}).probability == (1.0, 1.0)
    drawn = [nem.plan_params("all", random.Random(s))["probability"] for s in range(50)]
    assert all(0.1 <= p <= 0.5 for p in drawn) and len(set(drawn)) > 10


def test_lossy_scripts_really_clean_up(tmp_path: Path) -> None:
    """heal_script against fake iptables and tc that log their arguments: it removes the
    INPUT jump and the chain, deletes only a root qdisc with this nemesis's handle, and
    fails while anything of its own is left."""
    log = tmp_path / "log"
    net = tmp_path / "net"
    for dev in ("eth0", "eth1"):
        (net / dev).mkdir(parents=True)
    (tmp_path / "iptables").write_text(
        "#!/bin/sh\n"
        f'echo "iptables $*" >> {log}\n'
        'case "$*" in\n'
        f'  *"-D INPUT"*) n=$(grep -c "D INPUT" {log}); [ "$n" -le 1 ] ;;\n'
        f'  *"-S {LOSSY_CHAIN}"*) [ -e {tmp_path}/still ] ;;\n'
        "  *) true ;;\n"
        "esac\n"
    )
    # eth0 carries this nemesis's tree until it is deleted; eth1 someone else's qdisc.
    (tmp_path / "tc").write_text(
        "#!/bin/sh\n"
        f'echo "tc $*" >> {log}\n'
        'case "$*" in\n'
        f'  "qdisc show dev eth0 root") [ -e {tmp_path}/gone ] && echo "qdisc noqueue 0: root" '
        f'|| echo "qdisc htb {HANDLE}: root refcnt 2" ;;\n'
        '  "qdisc show dev eth1 root") echo "qdisc htb 1: root refcnt 2" ;;\n'
        f'  "qdisc del dev eth0 root") touch {tmp_path}/gone ;;\n'
        "  *) true ;;\n"
        "esac\n"
    )
    for tool in ("iptables", "tc"):
        (tmp_path / tool).chmod(0o755)
    script = heal_script().replace("/sys/class/net", str(net))
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    r = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines()
    assert lines.count(f"iptables -w -D INPUT -j {LOSSY_CHAIN}") == 2  # one jump, then none
    assert f"iptables -w -X {LOSSY_CHAIN}" in lines
    assert "tc qdisc del dev eth0 root" in lines
    assert "tc qdisc del dev eth1 root" not in lines  # not ours: left alone
    (tmp_path / "still").touch()
    r = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "still there" in r.stderr


def test_loss_and_slow_scripts_quote_nothing_but_addresses() -> None:
    script = loss_script(["10.0.0.2", "10.0.0.3"], 0.25)
    assert script.count("-m statistic --mode random --probability 0.250000 -j DROP") == 2
    from harness.nemesis.lossy import Slow

    shaped = slow_script(["10.0.0.2"], Slow(64, 1600, 50))
    assert "ip -o route get 10.0.0.2" in shaped and "flowid 4c48:1" in shaped


def test_lossy_never_touches_the_host_address() -> None:
    from harness.backends.base import Node

    cluster = FakeCluster(3)
    cluster.nodes[1] = Node("n2", HOST, "ns-n2")
    with pytest.raises(RuntimeError, match="host address"):
        LossyNemesis().start(cluster, plan("lossy", "all", probability=0.2))
    assert not any("iptables-restore" in a[-1] for _, a in cluster.backend.calls)


# ------------------------------------------------------- explicit schedules, report labels


def test_explicit_entries_for_the_new_faults() -> None:
    p = parse_fault(
        {"kind": "partition", "mode": "one-direction", "at_s": 1, "duration_s": 2,
         "params": {"direction": "in"}},
        "s[0]",
    )  # fmt: skip
    assert p.params == {"direction": "in"}
    p = parse_fault({"kind": "lossy", "mode": "all", "at_s": 1, "duration_s": 2,
                     "params": {"probability": 0.4}}, "s[1]")  # fmt: skip
    assert p.nemesis == "lossy" and p.params == {"probability": 0.4}
    bad = [
        ({"kind": "partition", "mode": "one-direction", "params": {"direction": "up"}}, "up"),
        ({"kind": "partition", "mode": "one-link", "params": {"direction": "in"}}, "no params"),
        ({"kind": "lossy", "mode": "all", "params": {}}, "probability"),
        ({"kind": "lossy", "mode": "all", "params": {"probability": 2}}, "probability"),
        ({"kind": "lossy", "mode": "ring", "params": {"probability": 0.2}}, "lossy modes"),
    ]
    for entry, words in bad:
        with pytest.raises(ScheduleError, match=words):
            parse_fault({**entry, "at_s": 0, "duration_s": 1}, "s[2]")


def test_report_labels_come_from_the_nemesis() -> None:
    assert (
        fault_label(
            "partition",
            "start-partition",
            {"mode": "one-direction", "node": "n2", "direction": "out", "nodes": ["n2"]},
        )
        == "partition one-direction: n2 is not heard (drops out)"
    )
    one_link = {"mode": "one-link", "groups": [["n1", "n3"], ["n2", "n3"]], "link": ["n1", "n2"]}
    label = fault_label("partition", "start-partition", one_link)
    assert label == "partition one-link: n1 x n2 cut"
    halves = {"mode": "halves", "groups": [["n1"], ["n2", "n3"]]}
    assert fault_label("partition", "start-partition", halves) == "partition halves: n1 | n2 n3"
    lossy = {"mode": "one-link", "links": [["n1", "n2"]], "probability": 0.25,
             "slow": {"rate_kbit": 256}}  # fmt: skip
    assert fault_label("lossy", "start-lossy", lossy) == "lossy 25% loss, 256 kbit/s on n1-n2"
