"""The partition nemesis: cut node-to-node traffic inside each node's network namespace.

Modes (Jepsen's catalogue): `halves` (random majority | minority), `one` (isolate one
node), `leader` (isolate the current leader), `ring` (every node sees a majority, no two
nodes the same one) and `bridge` (two halves sharing one node).

A partition is a set of `groups` of node names: two nodes can talk iff some group holds
both. Each node then drops, in both directions, the addresses of the nodes it shares no
group with, through a dedicated iptables chain `LH-PARTITION` jumped to from INPUT and
OUTPUT in its own namespace (via `backend.run`). Only node addresses are ever dropped:
the harness's host address carries the protected resource and the status probes, which
must stay reachable from every node (the dangerous case is a deposed leader that can
still write). Heal removes the jumps and the chain on every node, whatever the start
managed to do, then kills the TCP connections between the formerly cut nodes
(`ss -K`), which would otherwise sit in retransmission back-off for seconds.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from harness.backends.base import Node
from nemesis._common import FaultError, check_keys, on_nodes, start_or_undo, subset
from nemesis.base import Cluster, FaultPlan

log = logging.getLogger(__name__)

CHAIN = "LH-PARTITION"
MODES: tuple[str, ...] = ("halves", "one", "leader", "holder", "ring", "bridge")
# `holder` (isolate the node whose candidate holds the election) is opt-in: for the
# reference elector it is the leader's node anyway.
DEFAULT_MODES: tuple[str, ...] = ("halves", "one", "leader", "ring", "bridge")


def partition_groups(
    mode: str, names: Sequence[str], pick: int, leader: str | None = None
) -> tuple[list[list[str]], str | None]:
    """The groups for `mode` over `names` (a pure function), and a note when the mode had
    to be adapted (no leader known; a ring of 3 nodes)."""
    names = list(names)
    n = len(names)
    if n < 3:
        raise FaultError(f"partition {mode}: needs at least 3 nodes, this cluster has {n}")
    rng = random.Random(pick)
    shuffled = names[:]
    rng.shuffle(shuffled)
    note = None
    if mode == "halves":
        m = n // 2 + 1
        return [shuffled[:m], shuffled[m:]], None
    if mode in ("one", "leader", "holder"):
        # For `holder`, `leader` names the holder's node.
        if mode != "one" and leader in names:
            alone = leader
        else:
            alone = rng.choice(names)
            if mode != "one":
                note = f"no {mode} known: isolated {alone}, chosen by pick"
        return [[alone], [x for x in names if x != alone]], note
    if mode == "bridge":
        bridge, rest = shuffled[0], shuffled[1:]
        half = len(rest) // 2
        return [[bridge, *rest[:half]], [bridge, *rest[half:]]], None
    if mode == "ring":
        # Links are cut in both directions, so a node sees a peer iff the peer sees it: a
        # circulant graph where each node sees the k nearest on each side of a shuffled
        # ring. k is the least that makes 2k+1 a majority; every window of k+1 consecutive
        # nodes is then a group (all its pairs are within k of each other).
        k = -(-(n // 2) // 2)  # ceil((majority - 1) / 2)
        if 2 * k >= n - 1:
            # n = 3: that graph is complete (nothing cut). The only symmetric cut where
            # every node sees a majority and no two see the same one is a line a-b-c:
            # a sees {a,b}, c sees {b,c}, b sees all three.
            a, b, c = shuffled
            return [[a, b], [b, c]], "a ring of 3 nodes degenerates to a line (a bridge)"
        return [[shuffled[(i + j) % n] for j in range(k + 1)] for i in range(n)], None
    raise ValueError(f"partition: unknown mode {mode!r}; expected one of {', '.join(MODES)}")


def cut_peers(groups: Sequence[Sequence[str]], names: Sequence[str]) -> dict[str, list[str]]:
    """For each node, the peers it shares no group with (in `names` order)."""
    sees: dict[str, set[str]] = {x: {x} for x in names}
    for group in groups:
        for x in group:
            sees[x].update(group)
    return {x: [y for y in names if y not in sees[x]] for x in names}


def block_script(addresses: Sequence[str]) -> str:
    """Shell for one namespace: fill the chain (the `:CHAIN` line of a --noflush restore
    creates or flushes it), then make INPUT and OUTPUT jump to it, once."""
    rules = "".join(f"-A {CHAIN} -s {a} -j DROP\n-A {CHAIN} -d {a} -j DROP\n" for a in addresses)
    return (
        f"iptables-restore -w --noflush <<'EOF'\n*filter\n:{CHAIN} - [0:0]\n{rules}COMMIT\nEOF\n"
        f"[ $? -eq 0 ] || exit 1\n"
        f"for c in INPUT OUTPUT; do\n"
        f"  iptables -w -C $c -j {CHAIN} 2>/dev/null || iptables -w -I $c 1 -j {CHAIN} || exit 1\n"
        f"done\n"
    )


# Removes every jump and the chain; fails only if the chain is still there afterwards.
# Safe on a namespace the start never touched.
UNBLOCK_SCRIPT = (
    "command -v iptables >/dev/null || exit 127\n"
    "for c in INPUT OUTPUT; do\n"
    f"  while iptables -w -D $c -j {CHAIN} 2>/dev/null; do :; done\n"
    "done\n"
    f"iptables -w -F {CHAIN} 2>/dev/null\n"
    f"iptables -w -X {CHAIN} 2>/dev/null\n"
    f"! iptables -w -S {CHAIN} >/dev/null 2>&1\n"
)


class PartitionFault:
    def __init__(
        self,
        cluster: Cluster,
        mode: str,
        groups: list[list[str]],
        value: dict[str, Any],
    ) -> None:
        self.cluster = cluster
        self.mode = mode
        self.groups = groups
        self.value = value
        self.description = f"partition {mode}: " + " | ".join(" ".join(g) for g in groups)
        names = [n.name for n in cluster.nodes]
        self.cut = cut_peers(groups, names)
        self._by_name = {n.name: n for n in cluster.nodes}
        self._lock = threading.Lock()
        self._healed = False

    def _addresses(self, node: Node) -> list[str]:
        host = self.cluster.backend.host_address
        addresses = [self._by_name[p].address for p in self.cut[node.name]]
        for a in addresses:
            # The scripts hold addresses unquoted: only plain IP addresses may go in.
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise FaultError(f"partition: node address {a!r} is not an IP address") from None
            # Never drop the harness itself, even if a backend reported overlapping addresses.
            if a == host:
                raise FaultError(
                    f"partition: refusing to drop {a} on {node.name}: it is the host address"
                )
        return addresses

    def apply(self) -> None:
        victims = [n for n in self.cluster.nodes if self.cut[n.name]]
        # Every address is checked before any rule goes in anywhere.
        addresses = {n.name: self._addresses(n) for n in victims}

        def block(node: Node) -> None:
            r = self.cluster.backend.run(node, ["sh", "-c", block_script(addresses[node.name])])
            if r.returncode != 0:
                raise FaultError(
                    f"partition: iptables on {node.name} failed ({r.returncode}): "
                    f"{r.stderr.strip()}"
                )

        errors = [f"{n.name}: {e}" for n, e in on_nodes(victims, block) if isinstance(e, Exception)]
        if errors:
            raise FaultError("partition start failed: " + "; ".join(errors))

    def heal(self) -> None:
        with self._lock:
            if self._healed:
                return
            backend = self.cluster.backend

            def unblock(node: Node) -> None:
                r = backend.run(node, ["sh", "-c", UNBLOCK_SCRIPT])
                if r.returncode != 0:
                    raise FaultError(
                        f"partition: could not remove chain {CHAIN} on {node.name} "
                        f"({r.returncode}): {r.stderr.strip()}"
                    )

            # Every node, not only those that got rules: the start may have failed after
            # touching any of them, and removing an absent chain is harmless.
            results = on_nodes(list(self.cluster.nodes), unblock)
            errors = [f"{n.name}: {e}" for n, e in results if isinstance(e, Exception)]

            def kill_sockets(node: Node) -> None:
                peers = [self._by_name[p].address for p in self.cut[node.name]]
                expr: list[str] = []
                for a in peers:
                    expr += [*(["or"] if expr else []), "dst", a]
                r = backend.run(node, ["ss", "-K", "-n", *expr])
                if r.returncode != 0:
                    raise FaultError(f"ss -K failed ({r.returncode}): {r.stderr.strip()}")

            victims = [n for n in self.cluster.nodes if self.cut[n.name]]
            for node, e in on_nodes(victims, kill_sockets):
                if isinstance(e, Exception):
                    # Recovery is only slower without it (TCP back-off), so heal goes on.
                    log.warning("partition heal: killing sockets on %s: %s", node.name, e)
            if errors:
                raise FaultError("partition heal failed: " + "; ".join(errors))
            self._healed = True
            self.cluster.record("stop-partition", self.value)

    def __repr__(self) -> str:
        return f"PartitionFault({self.description!r})"


class PartitionNemesis:
    """Network partitions by iptables inside each node's namespace."""

    name = "partition"
    SETTINGS: Mapping[str, str] = {"modes": f"a list of {', '.join(MODES)}"}

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        settings = {} if settings is None else settings
        check_keys(self.name, settings, self.SETTINGS)
        modes = settings.get("modes", DEFAULT_MODES)
        self.modes: tuple[str, ...] = subset(self.name, "modes", modes, MODES)

    def refusal(self, cluster: Cluster) -> str | None:
        if len(cluster.nodes) < 3:
            return (
                f"partition: needs at least 3 nodes to cut, this cluster has "
                f"{len(cluster.nodes)}; use --nodes 3 or more"
            )
        return None

    def plan_params(self, mode: str, rng: random.Random) -> dict[str, Any]:
        return {}  # the mode and the plan's pick say everything

    def start(self, cluster: Cluster, plan: FaultPlan) -> PartitionFault:
        leader = None
        if plan.mode == "leader":
            leader = cluster.leader()
        elif plan.mode == "holder":
            leader = cluster.holder()
        names = [n.name for n in cluster.nodes]
        groups, note = partition_groups(
            plan.mode, names, plan.pick, None if leader is None else leader.name
        )
        value: dict[str, Any] = {"mode": plan.mode, "groups": groups}
        if note:
            value["note"] = note
        fault = PartitionFault(cluster, plan.mode, groups, value)
        start_or_undo(cluster, "start-partition", value, fault.apply, fault.heal)
        return fault


def describe_rules(script: str) -> list[str]:
    """The DROP rules a block script installs (for logs and tests)."""
    return [line for line in script.splitlines() if line.startswith(f"-A {CHAIN} ")]


__all__ = [
    "CHAIN",
    "MODES",
    "PartitionFault",
    "PartitionNemesis",
    "block_script",
    "cut_peers",
    "describe_rules",
    "partition_groups",
]
