"""Integration test of the partition nemesis on the real local backend (root only).

Three network namespaces; an echo server in n2 and one on the host address. Isolating
n1 must cut n1 <-> n2 while n1 still reaches the host (the protected resource and the
probes live there); heal must restore n1 -> n2 and leave every namespace's iptables as
it found it. The backend is torn down in `finally`, and nothing of the run may remain.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import Backend, Node
from harness.nemesis.base import FaultPlan
from harness.nemesis.partition import CHAIN, PartitionNemesis, partition_groups
from tests.netcheck import HostEcho, start_echo, tcp


class RealCluster:
    """Just enough of the runner's Cluster for the partition nemesis."""

    def __init__(self, backend: Backend, nodes: Sequence[Node]) -> None:
        self.backend = backend
        self.nodes = list(nodes)
        self.events: list[tuple[str, dict[str, Any]]] = []

    def leader(self) -> Node | None:
        return None

    def record(self, f: str, value: dict[str, Any]) -> None:
        self.events.append((f, value))


def iptables_s(backend: Backend, node: Node) -> str:
    r = backend.run(node, ["iptables", "-w", "-S"])
    assert r.returncode == 0, r.stderr
    return r.stdout


def leftovers(short_id: str) -> list[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [x for x in ns.splitlines() if f"lh-{short_id}-" in x] + [
        x for x in links.splitlines() if f"lh{short_id}" in x or f"lhb{short_id}" in x
    ]


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="the local backend needs root")
def test_partition_one_on_real_namespaces(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from harness.backends.local import LocalBackend

    backend = LocalBackend("nemesis-partition", state_dir=tmp_path / "state")
    host = None
    try:
        n1, n2, n3 = backend.provision(["n1", "n2", "n3"])
        cluster = RealCluster(backend, [n1, n2, n3])
        pristine = {n.name: iptables_s(backend, n) for n in cluster.nodes}
        start_echo(backend, n2, 7011, tmp_path / "echo.log")
        host = HostEcho(backend.host_address)
        assert tcp(backend, n1, n2.address, 7011)

        # The pick that makes mode `one` isolate n1 (choice is a pure function of it).
        pick = next(
            p for p in range(100) if partition_groups("one", ["n1", "n2", "n3"], p)[0][0] == ["n1"]
        )
        fault = PartitionNemesis().start(cluster, FaultPlan("partition", "one", 0, 1, pick))
        assert cluster.events[0] == (
            "start-partition",
            {"mode": "one", "groups": [["n1"], ["n2", "n3"]]},
        )
        rules = iptables_s(backend, n1)
        assert f"-A INPUT -j {CHAIN}" in rules and f"-A OUTPUT -j {CHAIN}" in rules
        assert f"-A {CHAIN} -s {n2.address}/32 -j DROP" in rules
        assert f"-A {CHAIN} -d {n3.address}/32 -j DROP" in rules
        assert f" {backend.host_address}/32 " not in rules
        assert not tcp(backend, n1, n2.address, 7011, timeout=0.5)
        assert tcp(backend, n1, backend.host_address, host.port)  # the harness stays reachable
        assert tcp(backend, n3, n2.address, 7011)  # the majority side still talks

        with caplog.at_level(logging.WARNING):
            fault.heal()
            fault.heal()
        assert "killing sockets" not in caplog.text  # ss -K worked in the namespaces
        assert [f for f, _ in cluster.events] == ["start-partition", "stop-partition"]
        assert tcp(backend, n1, n2.address, 7011)
        for n in cluster.nodes:
            after = iptables_s(backend, n)
            assert after == pristine[n.name] and CHAIN not in after, n.name
    finally:
        if host is not None:
            host.close()
        backend.teardown()
    if backend.short_id:
        assert leftovers(backend.short_id) == []
