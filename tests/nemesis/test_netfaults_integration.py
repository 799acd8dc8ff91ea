"""Integration tests of the partial network faults on the real local and docker backends.

Three network namespaces (root only), then three containers (when a Docker daemon
answers). `one-link` must cut exactly the leader <-> follower link, both
ways, while the third node reaches both and every node reaches the host; `one-direction`
must let datagrams into the node but none out (or the reverse); `lossy` must drop about
the asked share of datagrams on its link and none elsewhere, and its slow link must
really be slow. Every heal must restore traffic and leave iptables and the qdiscs of
every namespace as they were, and nothing of the run may remain after teardown.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import Backend, Daemon, Node
from harness.nemesis.base import FaultPlan
from harness.nemesis.lossy import CHAIN as LOSSY_CHAIN
from harness.nemesis.lossy import HANDLE, LossyNemesis, lossy_links
from harness.nemesis.partition import (
    CHAIN,
    PartitionNemesis,
    cut_peers,
    one_direction_node,
    partition_groups,
)
from harness.testing.netprobe import TCP_SEND, TCP_SINK, UDP_SEND, UDP_SINK
from tests.nemesis.test_nemesis_local import iptables_s, leftovers
from tests.netcheck import HostEcho, start_echo, tcp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and iptables need root"),
]

class RealCluster:
    """Just enough of the runner's Cluster for the network nemeses, with a fixed leader."""

    def __init__(self, backend: Backend, nodes: Sequence[Node], leader: str) -> None:
        self.backend = backend
        self.nodes = list(nodes)
        self.leader_name = leader
        self.events: list[tuple[str, dict[str, Any]]] = []

    def leader(self) -> Node | None:
        return next(n for n in self.nodes if n.name == self.leader_name)

    def holder(self) -> Node | None:
        return self.leader()

    def record(self, f: str, value: dict[str, Any]) -> None:
        self.events.append((f, value))


def qdiscs(backend: Backend, node: Node) -> str:
    r = backend.run(node, ["tc", "qdisc", "show"])
    assert r.returncode == 0, r.stderr
    return r.stdout


def spawn_ready(backend: Backend, node: Node, name: str, argv: list[str], log: Path) -> Daemon:
    d = backend.spawn(node, name, argv, log_path=log)
    deadline = time.monotonic() + 5
    while "listening" not in (log.read_text() if log.exists() else ""):
        assert d.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.02)
    return d


class Udp:
    """A UDP sink on every node (port 7021); `share(a, b, n)` sends n datagrams from a to
    b and returns the share that arrived."""

    PORT = 7021

    def __init__(self, backend: Backend, nodes: Sequence[Node], tmp: Path) -> None:
        self.backend = backend
        self.logs = {n.name: tmp / "logs" / f"udp-{n.name}.log" for n in nodes}
        for n in nodes:
            py = [backend.python, "-u", "-c", UDP_SINK, str(self.PORT)]
            spawn_ready(backend, n, f"udp-{n.name}", py, self.logs[n.name])
        self.count = 0

    def share(self, a: Node, b: Node, n: int) -> float:
        self.count += 1
        tag = f"t{self.count}{a.name}"
        argv = [self.backend.python, "-c", UDP_SEND, b.address, str(self.PORT), str(n), tag]
        r = self.backend.run(a, argv, timeout=60)
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)  # the last datagrams reach the sink's log
        lines = self.logs[b.name].read_text().splitlines()
        return sum(1 for x in lines if x.startswith(f"{tag}-")) / n


def docker_answers() -> bool:
    from harness.backends import docker as dk

    return dk.daemon_answers()


@pytest.fixture(
    params=[
        "local",
        pytest.param(
            "docker",
            marks=pytest.mark.skipif(not docker_answers(), reason="no Docker daemon answers"),
        ),
    ]
)
def three(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Backend, list[Node]]]:
    """Three nodes on the local backend (namespaces) or the docker backend (containers:
    the node image is built, cached, on first use); `tmp_path` is then the run directory
    (0755, as the harness makes one) and logs go in its logs/."""
    from harness.backends import create_backend

    run_id = f"nemesis-netfaults-{os.getpid()}-{time.monotonic_ns()}"
    if request.param == "local":
        from harness.backends.local import LocalBackend

        backend: Backend = LocalBackend(run_id, state_dir=tmp_path / "state")
    else:
        backend = create_backend("docker", run_id)
    tmp_path.chmod(0o755)
    (tmp_path / "logs").mkdir()
    try:
        yield backend, backend.provision(["n1", "n2", "n3"], shared_dir=tmp_path)
    finally:
        backend.teardown()
        short_id = getattr(backend, "short_id", "")
        if request.param == "local" and short_id:
            assert leftovers(short_id) == []
        if request.param == "docker":
            from tests.backends.test_backend_docker import leftovers as labelled

            assert labelled(run_id) == []


def test_one_link_cuts_exactly_one_link_and_heals(
    three: tuple[Backend, list[Node]], tmp_path: Path
) -> None:
    backend, nodes = three
    n1, n2, n3 = nodes
    cluster = RealCluster(backend, nodes, leader="n1")
    pristine = {n.name: iptables_s(backend, n) for n in nodes}
    for i, n in enumerate(nodes):
        start_echo(backend, n, 7011, tmp_path / "logs" / f"echo{i}.log")
    host = HostEcho(backend.host_address)
    try:
        # The pick that makes the cut link n1-n2 (a pure function of it).
        names = ["n1", "n2", "n3"]
        pick = next(
            p
            for p in range(100)
            if cut_peers(partition_groups("one-link", names, p, "n1")[0], names)["n1"] == ["n2"]
        )
        nem = PartitionNemesis({"modes": ["one-link"]})
        fault = nem.start(cluster, FaultPlan("partition", "one-link", 0, 1, pick))
        assert cluster.events[0][1]["link"] == ["n1", "n2"]
        assert not tcp(backend, n1, n2.address, 7011, timeout=0.5)
        assert not tcp(backend, n2, n1.address, 7011, timeout=0.5)
        for a, b in ((n1, n3), (n3, n1), (n2, n3), (n3, n2)):  # the third reaches both
            assert tcp(backend, a, b.address, 7011), (a.name, b.name)
        for n in nodes:
            assert tcp(backend, n, backend.host_address, host.port)
        assert CHAIN not in iptables_s(backend, n3)
        fault.heal()
        assert tcp(backend, n1, n2.address, 7011) and tcp(backend, n2, n1.address, 7011)
        for n in nodes:
            assert iptables_s(backend, n) == pristine[n.name], n.name
    finally:
        host.close()


@pytest.mark.parametrize("direction", ["out", "in"])
def test_one_direction_drops_one_way_only_and_heals(
    three: tuple[Backend, list[Node]], tmp_path: Path, direction: str
) -> None:
    backend, nodes = three
    n1, n2, n3 = nodes
    cluster = RealCluster(backend, nodes, leader="n2")
    pristine = {n.name: iptables_s(backend, n) for n in nodes}
    udp = Udp(backend, nodes, tmp_path)
    assert udp.share(n1, n2, 50) == 1.0
    pick = next(p for p in range(100) if one_direction_node(["n1", "n2", "n3"], p) == "n1")
    nem = PartitionNemesis({"modes": ["one-direction"]})
    plan = FaultPlan("partition", "one-direction", 0, 1, pick, {"direction": direction})
    fault = nem.start(cluster, plan)
    out_share = {b.name: udp.share(n1, b, 50) for b in (n2, n3)}
    in_share = {a.name: udp.share(a, n1, 50) for a in (n2, n3)}
    if direction == "out":  # n1 hears but is not heard
        assert out_share == {"n2": 0.0, "n3": 0.0} and in_share == {"n2": 1.0, "n3": 1.0}
    else:  # n1 is heard but hears nothing
        assert out_share == {"n2": 1.0, "n3": 1.0} and in_share == {"n2": 0.0, "n3": 0.0}
    assert udp.share(n2, n3, 50) == 1.0  # the others are untouched
    fault.heal()
    assert udp.share(n1, n2, 50) == 1.0 and udp.share(n2, n1, 50) == 1.0
    for n in nodes:
        assert iptables_s(backend, n) == pristine[n.name], n.name


def test_lossy_drops_about_p_on_its_link_only_and_heals(
    three: tuple[Backend, list[Node]], tmp_path: Path
) -> None:
    backend, nodes = three
    n1, n2, n3 = nodes
    cluster = RealCluster(backend, nodes, leader="n1")
    pristine = {n.name: (iptables_s(backend, n), qdiscs(backend, n)) for n in nodes}
    nem = LossyNemesis({"modes": ["one-link"], "probability": [0.3, 0.3]})
    assert nem.refusal(cluster) is None  # the real probe: statistic works here
    udp = Udp(backend, nodes, tmp_path)
    pick = next(p for p in range(100) if lossy_link_of(p) == ("n1", "n2"))
    fault = nem.start(cluster, FaultPlan("lossy", "one-link", 0, 1, pick, {"probability": 0.3}))
    n = 2000
    # Binomial(2000, 0.7): sd about 1 %; the band is loose (+-5 points), so only a
    # wrong mechanism (no loss, loss applied twice: 51 %, or on the wrong link) fails.
    for a, b in ((n1, n2), (n2, n1)):
        loss = 1 - udp.share(a, b, n)
        assert 0.25 <= loss <= 0.35, (a.name, b.name, loss)
    assert udp.share(n1, n3, 500) == 1.0 and udp.share(n3, n2, 500) == 1.0
    assert f"-A INPUT -j {LOSSY_CHAIN}" in iptables_s(backend, n1)
    fault.heal()
    assert udp.share(n1, n2, 500) == 1.0 and udp.share(n2, n1, 500) == 1.0
    for x in nodes:
        assert (iptables_s(backend, x), qdiscs(backend, x)) == pristine[x.name], x.name


def lossy_link_of(pick: int) -> tuple[str, ...]:
    """The link a one-link lossy fault with leader n1 makes lossy for `pick`."""
    return lossy_links("one-link", ["n1", "n2", "n3"], pick, "n1")[0][0]


def test_lossy_slow_link_is_slow_and_heals(
    three: tuple[Backend, list[Node]], tmp_path: Path
) -> None:
    backend, nodes = three
    n1, n2, n3 = nodes
    cluster = RealCluster(backend, nodes, leader="n1")
    pristine = {n.name: (iptables_s(backend, n), qdiscs(backend, n)) for n in nodes}
    slow = {"rate_kbit": 256, "burst_bytes": 8000, "latency_ms": 200}
    # A tiny loss so that the shaping, not the loss, sets the pace.
    nem = LossyNemesis({"modes": ["one-link"], "probability": [0.001, 0.001], "slow": slow})
    assert nem.refusal(cluster) is None  # the real probe: htb, tbf and u32 work here
    for n in nodes:
        spawn_ready(
            backend, n, f"sink-{n.name}", [backend.python, "-u", "-c", TCP_SINK, "7031"],
            tmp_path / "logs" / f"sink-{n.name}.log",
        )  # fmt: skip

    def seconds(a: Node, b: Node, nbytes: int) -> float:
        send = [backend.python, "-c", TCP_SEND, b.address, "7031", str(nbytes), "20"]
        r = backend.run(a, send, 60)
        assert r.returncode == 0, r.stderr
        return float(r.stdout)

    size = 64_000  # 512 kbit: about 2 s at 256 kbit/s
    assert seconds(n1, n2, size) < 0.5
    pick = next(p for p in range(100) if lossy_link_of(p) == ("n1", "n2"))
    fault = nem.start(cluster, FaultPlan("lossy", "one-link", 0, 1, pick, {"probability": 0.001}))
    assert f"qdisc htb {HANDLE}:" in qdiscs(backend, n1)
    assert seconds(n1, n2, size) > 1.2  # shaped (the burst lets the first 8 kB through)
    assert seconds(n1, n3, size) < 0.5  # other links are not
    fault.heal()
    assert seconds(n1, n2, size) < 0.5
    for x in nodes:
        assert (iptables_s(backend, x), qdiscs(backend, x)) == pristine[x.name], x.name
