"""The partition nemesis: cut node-to-node traffic inside each node's network namespace.

Modes (Jepsen's catalogue): `halves` (random majority | minority), `one` (isolate one
node), `leader` (isolate the current leader), `ring` (every node sees a majority, no two
nodes the same one) and `bridge` (two halves sharing one node). Two partial failures of
real outages are opt-in modes: `one-link` cuts the single link between the leader and
one follower, both ways, while every other link stays up (Cloudflare's etcd outage of 2
November 2020: the third node still reached both and elections repeated for hours), and
`one-direction` drops only one direction of one node's traffic (Jepsen's `drop`):
direction `out`, the node hears but is not heard; `in`, it is heard but does not hear.

A symmetric partition is a set of `groups` of node names: two nodes can talk iff some
group holds both (`one-link` is the groups "all but the follower" and "all but the
leader"). Each node then drops, in both directions, the addresses of the nodes it shares
no group with; a `one-direction` fault drops, on its node only, packets to (`out`) or
from (`in`) the others. Rules go in a dedicated iptables chain `LH-PARTITION` jumped to
from INPUT and OUTPUT in the node's own namespace, container or host (via `backend.run`).
Over TCP one direction is enough to stop new connections both ways (the handshake needs
both); an open connection still delivers to a node whose ACKs are dropped until the
sender's retransmission timeout closes it. Only node addresses are ever dropped:
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
from harness.nemesis._common import (
    FaultError,
    on_nodes,
    read_weights,
    run_scripts,
    settings_reader,
    start_or_undo,
)
from harness.nemesis.base import Cluster, FaultPlan, ReportBand

log = logging.getLogger(__name__)

CHAIN = "LH-PARTITION"
MODES: tuple[str, ...] = (
    "halves", "one", "leader", "holder", "ring", "bridge", "one-link", "one-direction"
)  # fmt: skip
# `holder` (isolate the node whose candidate holds the election) is opt-in: for the
# reference elector it is the leader's node anyway. The partial failures `one-link` and
# `one-direction` are in the default mix: they are what takes clusters down in real
# outages, so a plain `--nemesis partition` or `all` must reach them.
DEFAULT_MODES: tuple[str, ...] = (
    "halves", "one", "leader", "ring", "bridge", "one-link", "one-direction"
)  # fmt: skip
# Cutting off the node that leads the cluster (or holds the election) is the partition
# that tests an election system most directly: a round of the mode bag holds each of
# them three times, every other mode once (setting `weights`).
DEFAULT_MODE_WEIGHTS: Mapping[str, int] = {"leader": 3, "holder": 3}
# Which way a `one-direction` fault drops the node's traffic: `out` (to the others: it
# hears but is not heard, Jepsen's drop) or `in` (from the others: heard, but deaf).
DIRECTIONS: tuple[str, ...] = ("out", "in")


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
    if mode == "one-link":
        # `leader` names the leader's node; the follower is chosen by pick among the rest.
        if leader in names:
            a = leader
        else:
            a = rng.choice(names)
            note = f"no leader known: cut a link of {a}, chosen by pick"
        b = rng.choice([x for x in names if x != a])
        return [[x for x in names if x != b], [x for x in names if x != a]], note
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


def one_direction_node(names: Sequence[str], pick: int) -> str:
    """The node a `one-direction` fault hits: any node, by pick (Jepsen's drop)."""
    if len(names) < 2:
        raise FaultError(f"partition one-direction: needs at least 2 nodes, got {len(names)}")
    return random.Random(pick).choice(list(names))


def cut_peers(groups: Sequence[Sequence[str]], names: Sequence[str]) -> dict[str, list[str]]:
    """For each node, the peers it shares no group with (in `names` order)."""
    sees: dict[str, set[str]] = {x: {x} for x in names}
    for group in groups:
        for x in group:
            sees[x].update(group)
    return {x: [y for y in names if y not in sees[x]] for x in names}


def block_script(addresses: Sequence[str], chain: str = CHAIN, direction: str = "both") -> str:
    """Shell for one node: fill the chain (the `:CHAIN` line of a --noflush restore
    creates or flushes it), then make INPUT and OUTPUT jump to it, once. `direction`
    says which packets of those addresses drop: `both`, `in` (from them, `-s`) or `out`
    (to them, `-d`)."""
    if direction not in ("both", "in", "out"):
        raise ValueError(f"block_script: direction must be both, in or out; got {direction!r}")
    matches = {"both": ("-s", "-d"), "in": ("-s",), "out": ("-d",)}[direction]
    rules = "".join(f"-A {chain} {m} {a} -j DROP\n" for a in addresses for m in matches)
    return (
        f"iptables-restore -w --noflush <<'EOF'\n*filter\n:{chain} - [0:0]\n{rules}COMMIT\nEOF\n"
        f"[ $? -eq 0 ] || exit 1\n"
        f"for c in INPUT OUTPUT; do\n"
        f"  iptables -w -C $c -j {chain} 2>/dev/null || iptables -w -I $c 1 -j {chain} || exit 1\n"
        f"done\n"
    )


def unblock_script(chain: str = CHAIN) -> str:
    """Removes every jump and the chain; fails only if the chain is still there
    afterwards. Safe on a node the start never touched."""
    return (
        "command -v iptables >/dev/null || exit 127\n"
        "for c in INPUT OUTPUT; do\n"
        f"  while iptables -w -D $c -j {chain} 2>/dev/null; do :; done\n"
        "done\n"
        f"iptables -w -F {chain} 2>/dev/null\n"
        f"iptables -w -X {chain} 2>/dev/null\n"
        f"! iptables -w -S {chain} >/dev/null 2>&1\n"
    )


UNBLOCK_SCRIPT = unblock_script(CHAIN)


def chain_of(cluster: Cluster) -> str:
    """The backend's chain: a fixed name inside a node's own namespace; on shared real
    hosts, one of the run's own (so the run's watchdog removes exactly that)."""
    return getattr(cluster.backend, "partition_chain", CHAIN)


def one_way_cut(node: str, names: Sequence[str]) -> dict[str, list[str]]:
    """Who loses contact with whom when `node` drops one direction: the node with every
    other, and each other with the node (whose stale connections heal must reset)."""
    return {x: ([y for y in names if y != node] if x == node else [node]) for x in names}


class PartitionFault:
    """One active partition: symmetric `groups`, or with `one_way` = (node, direction)
    the one-direction drop on that node only (`groups` is then empty)."""

    def __init__(
        self,
        cluster: Cluster,
        mode: str,
        groups: list[list[str]],
        value: dict[str, Any],
        one_way: tuple[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.mode = mode
        self.groups = groups
        self.value = value
        self.one_way = one_way
        names = [n.name for n in cluster.nodes]
        if one_way is None:
            self.description = f"partition {mode}: " + " | ".join(" ".join(g) for g in groups)
            self.cut = cut_peers(groups, names)
            # Symmetric: every node drops both ways what it shares no group with.
            self.rules = {x: (peers, "both") for x, peers in self.cut.items()}
        else:
            node, direction = one_way
            self.description = f"partition {mode}: {node} drops {direction}"
            self.cut = one_way_cut(node, names)
            self.rules = {node: (self.cut[node], direction)}
        self._by_name = {n.name: n for n in cluster.nodes}
        self.chain = chain_of(cluster)
        self._lock = threading.Lock()
        self._healed = False

    def _addresses(self, node: Node) -> list[str]:
        host = self.cluster.backend.host_address
        addresses = [self._by_name[p].address for p in self.rules[node.name][0]]
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
        victims = [n for n in self.cluster.nodes if n.name in self.rules and self.rules[n.name][0]]
        # Every address is checked before any rule goes in anywhere.
        addresses = {n.name: self._addresses(n) for n in victims}

        scripts = {
            n.name: block_script(addresses[n.name], self.chain, self.rules[n.name][1])
            for n in victims
        }
        run_scripts(self.cluster, scripts, "partition start", "partition: iptables")

    def heal(self) -> None:
        with self._lock:
            if self._healed:
                return
            backend = self.cluster.backend

            def unblock(node: Node) -> None:
                r = backend.run(node, ["sh", "-c", unblock_script(self.chain)])
                if r.returncode != 0:
                    raise FaultError(
                        f"partition: could not remove chain {self.chain} on {node.name} "
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
    # Takes turns with the other faults that take a node or its links away: overlapping
    # two of them in a small cluster takes its quorum away (nemesis/schedule.py).
    timeline = "node"
    report_band = ReportBand(
        "partition", "start-partition", "stop-partition", "rgba(124, 58, 237, .13)"
    )
    SETTINGS: Mapping[str, str] = {
        "modes": f"a list of {', '.join(MODES)}",
        "directions": f"which ways one-direction drops, a list of {', '.join(DIRECTIONS)}",
        "weights": "a mapping of mode to an integer weight, 0 to 100 (default: leader and "
        "holder 3, the others 1)",
    }

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        r = settings_reader(self.name, settings, self.SETTINGS)
        self.modes: tuple[str, ...] = r.subset("modes", DEFAULT_MODES, MODES)
        self.directions: tuple[str, ...] = r.subset("directions", DIRECTIONS, DIRECTIONS)
        # The schedule draws modes from a bag holding each this many times a round
        # (nemesis/schedule.py), heaviest first.
        self.mode_weights = read_weights(r, self.modes, MODES, DEFAULT_MODE_WEIGHTS)

    def refusal(self, cluster: Cluster) -> str | None:
        if len(cluster.nodes) < 3:
            return (
                f"partition: needs at least 3 nodes to cut, this cluster has "
                f"{len(cluster.nodes)}; use --nodes 3 or more"
            )
        return None

    def plan_params(self, mode: str, rng: random.Random) -> dict[str, Any]:
        # Only one-direction draws anything, so the other modes' seeded schedules are
        # what they were before it existed.
        if mode == "one-direction":
            return {"direction": rng.choice(self.directions)}
        return {}  # the mode and the plan's pick say everything

    @staticmethod
    def fault_label(value: Mapping[str, Any]) -> str | None:
        """The report's label for a one-link or one-direction fault (None: the generic
        label, the groups)."""
        link = value.get("link")
        if value.get("mode") == "one-link" and isinstance(link, list) and len(link) == 2:
            return f"partition one-link: {link[0]} x {link[1]} cut"
        if value.get("mode") != "one-direction":
            return None
        node, direction = value.get("node"), value.get("direction")
        how = {"out": "is not heard (drops out)", "in": "does not hear (drops in)"}
        return f"partition one-direction: {node} {how.get(str(direction), direction)}"

    def start(self, cluster: Cluster, plan: FaultPlan) -> PartitionFault:
        names = [n.name for n in cluster.nodes]
        if plan.mode == "one-direction":
            direction = plan.params.get("direction", "out")
            if direction not in DIRECTIONS:
                raise FaultError(
                    f"partition one-direction: direction must be one of "
                    f"{', '.join(DIRECTIONS)}; got {direction!r}"
                )
            node = one_direction_node(names, plan.pick)
            value: dict[str, Any] = {
                "mode": plan.mode, "node": node, "direction": direction, "nodes": [node]
            }  # fmt: skip
            fault = PartitionFault(cluster, plan.mode, [], value, one_way=(node, direction))
            start_or_undo(cluster, "start-partition", value, fault.apply, fault.heal)
            return fault
        leader = None
        if plan.mode in ("leader", "one-link"):
            leader = cluster.leader()
        elif plan.mode == "holder":
            leader = cluster.holder()
        groups, note = partition_groups(
            plan.mode, names, plan.pick, None if leader is None else leader.name
        )
        value = {"mode": plan.mode, "groups": groups}
        if plan.mode == "one-link":
            cut = cut_peers(groups, names)
            value["link"] = [x for x in names if cut[x]]
        if note:
            value["note"] = note
        fault = PartitionFault(cluster, plan.mode, groups, value)
        if plan.mode == "one-link":
            fault.description = f"partition one-link: {' x '.join(value['link'])} cut"
        start_or_undo(cluster, "start-partition", value, fault.apply, fault.heal)
        return fault


__all__ = [
    "CHAIN",
    "DIRECTIONS",
    "MODES",
    "PartitionFault",
    "PartitionNemesis",
    "block_script",
    "cut_peers",
    "one_direction_node",
    "one_way_cut",
    "partition_groups",
    "unblock_script",
]
