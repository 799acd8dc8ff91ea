"""The lossy nemesis: random packet loss (and optionally a slow link) on chosen links.

Grey failures of real networks (a flapping NIC, a congested top-of-rack switch) rarely
cut a link cleanly: they drop some packets and delay the rest. This kernel has no netem,
so loss is iptables' `statistic` match (`-m statistic --mode random --probability p -j
DROP`), and a slow link is an HTB class whose leaf is a `tbf` qdisc (rate, burst,
latency), with u32 filters sending only the chosen peers' traffic through it.

Modes say which links: `one-link` (the leader and one follower, as partition's
`one-link`), `leader` (every link of the leader), `one` (every link of one node, by
pick) and `all` (every node-to-node link). Each endpoint of a lossy link drops incoming
packets from the other endpoint with probability p, so each direction loses p once (not
1 - (1 - p)^2), and shapes its outgoing packets to those peers. Only node addresses are
matched: the harness's address (the protected resource, the status probes) is never
slowed or dropped.

Rules go in a chain `LH-LOSSY` jumped to from INPUT, and the qdisc tree has the handle
`4c48:` ("LH"), in each node's own namespace or container. Heal removes the jump and the
chain and deletes a root qdisc only when its handle is 4c48: on every node, whatever the
start managed to do; a qdisc someone else put there makes the start fail rather than be
replaced. `refusal` probes one node once for the statistic match (and, with `slow`, for
htb, tbf and u32) and refuses on the ssh backend, whose hosts are shared machines: its
watchdog heals only the partition chain, and a root qdisc on a host's real interface
would shape every other user's traffic.
"""

from __future__ import annotations

import ipaddress
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.base import Node
from harness.nemesis._common import (
    FaultError,
    run_scripts,
    settings_reader,
    start_or_undo,
)
from harness.nemesis.base import Cluster, FaultPlan, ReportBand

CHAIN = "LH-LOSSY"
HANDLE = "4c48"  # "LH" in ASCII: the root qdisc this nemesis adds, and the only one it deletes
MODES: tuple[str, ...] = ("one-link", "leader", "one", "all")
DEFAULT_PROBABILITY = (0.1, 0.5)
PROBE_EXIT = 3  # the probe's "this kernel or node lacks a feature" status


@dataclass(frozen=True)
class Slow:
    """A slow link: tbf's rate (kbit/s), burst (bytes) and latency (the longest a packet
    may wait in the queue before it is dropped, ms)."""

    rate_kbit: int
    burst_bytes: int
    latency_ms: int

    def as_value(self) -> dict[str, int]:
        return {
            "rate_kbit": self.rate_kbit,
            "burst_bytes": self.burst_bytes,
            "latency_ms": self.latency_ms,
        }


def lossy_links(
    mode: str, names: Sequence[str], pick: int, leader: str | None = None
) -> tuple[list[tuple[str, str]], str | None]:
    """The links (pairs of node names, in `names` order) `mode` makes lossy, and a note
    when a leader-aware mode had to choose by pick (a pure function)."""
    names = list(names)
    if len(names) < 2:
        raise FaultError(f"lossy {mode}: needs at least 2 nodes, this cluster has {len(names)}")
    rng = random.Random(pick)
    order = {x: i for i, x in enumerate(names)}

    def pair(a: str, b: str) -> tuple[str, str]:
        return (a, b) if order[a] < order[b] else (b, a)

    if mode == "all":
        return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]], None
    note = None
    if mode in ("one-link", "leader") and leader in names:
        centre = leader
    elif mode in ("one-link", "leader", "one"):
        centre = rng.choice(names)
        if mode != "one":
            note = f"no leader known: chose {centre} by pick"
    else:
        raise ValueError(f"lossy: unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    others = [x for x in names if x != centre]
    if mode == "one-link":
        others = [rng.choice(others)]
    return sorted((pair(centre, x) for x in others), key=lambda p: (order[p[0]], order[p[1]])), note


def peers_of(links: Sequence[tuple[str, str]], names: Sequence[str]) -> dict[str, list[str]]:
    """For each node, the nodes it shares a lossy link with (in `names` order)."""
    linked: dict[str, set[str]] = {x: set() for x in names}
    for a, b in links:
        linked[a].add(b)
        linked[b].add(a)
    return {x: [y for y in names if y in linked[x]] for x in names}


def loss_script(addresses: Sequence[str], probability: float, chain: str = CHAIN) -> str:
    """Shell for one node: drop packets from `addresses` with `probability` (the
    `:CHAIN` line of a --noflush restore creates or flushes the chain), then make INPUT
    jump to it, once."""
    p = f"{probability:.6f}"
    rules = "".join(
        f"-A {chain} -s {a} -m statistic --mode random --probability {p} -j DROP\n"
        for a in addresses
    )
    return (
        f"iptables-restore -w --noflush <<'EOF'\n*filter\n:{chain} - [0:0]\n{rules}COMMIT\nEOF\n"
        f"[ $? -eq 0 ] || exit 1\n"
        f"iptables -w -C INPUT -j {chain} 2>/dev/null ||\n"
        f"  iptables -w -I INPUT 1 -j {chain} || exit 1\n"
    )


def _dev_of(address: str) -> str:
    # The device the node reaches `address` through (its one interface on the run's net).
    return f"$(ip -o route get {address} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')"


def slow_script(addresses: Sequence[str], slow: Slow, handle: str = HANDLE) -> str:
    """Shell for one node: on the device towards each of `addresses`, a root HTB (handle
    `handle:`, unclassified traffic passes unshaped) with one class of the given rate,
    a tbf leaf for burst and latency, and a u32 filter per address into that class."""
    rate = f"{slow.rate_kbit}kbit"
    leaf = f"{int(handle, 16) + 1:x}"
    setup = (
        "setup() {\n"
        f"  tc qdisc show dev \"$1\" root | grep -q '^qdisc htb {handle}: root' && return 0\n"
        f'  tc qdisc add dev "$1" root handle {handle}: htb &&\n'
        f'  tc class add dev "$1" parent {handle}: classid {handle}:1 htb '
        f"rate {rate} ceil {rate} &&\n"
        f'  tc qdisc add dev "$1" parent {handle}:1 handle {leaf}: tbf '
        f"rate {rate} burst {slow.burst_bytes} latency {slow.latency_ms}ms\n"
        "}\n"
    )
    body = "".join(
        f"dev={_dev_of(a)}\n"
        f'[ -n "$dev" ] || {{ echo "no route to {a}" >&2; exit 1; }}\n'
        'setup "$dev" || exit 1\n'
        f'tc filter add dev "$dev" parent {handle}: protocol ip prio 1 u32 '
        f"match ip dst {a}/32 flowid {handle}:1 || exit 1\n"
        for a in addresses
    )
    return setup + body


def heal_script(chain: str = CHAIN, handle: str = HANDLE) -> str:
    """Removes the INPUT jumps, the chain and every root qdisc of handle `handle:` (no
    other); fails only if any of them is still there afterwards. Safe on a node the start
    never touched."""
    ours = f"tc qdisc show dev \"$d\" root 2>/dev/null | grep -q '^qdisc htb {handle}: root'"
    return (
        "command -v iptables >/dev/null || exit 127\n"
        f"while iptables -w -D INPUT -j {chain} 2>/dev/null; do :; done\n"
        f"iptables -w -F {chain} 2>/dev/null\n"
        f"iptables -w -X {chain} 2>/dev/null\n"
        "left=0\n"
        "if command -v tc >/dev/null; then\n"
        "  for d in $(ls /sys/class/net); do\n"
        f'    if {ours}; then tc qdisc del dev "$d" root; fi\n'
        f'    if {ours}; then echo "qdisc {handle}: still on $d" >&2; left=1; fi\n'
        "  done\n"
        "fi\n"
        f"if iptables -w -S {chain} >/dev/null 2>&1; then\n"
        f"  echo 'chain {chain} still there' >&2; left=1\n"
        "fi\n"
        "exit $left\n"
    )


def _missing(reason: str) -> str:
    return f"{{ echo '{reason}'; exit {PROBE_EXIT}; }}"


def probe_script(slow: bool) -> str:
    """Shell that exits PROBE_EXIT with the reason on stdout if this node cannot drop at
    random (or, with `slow`, shape with htb, tbf and u32); 0 if it can. It leaves nothing:
    a scratch chain, and on `lo` (idle before the members start) a scratch qdisc tree."""
    script = (
        f"command -v iptables >/dev/null || {_missing('iptables is not installed')}\n"
        "iptables -w -N LH-LOSSY-PROBE 2>/dev/null || iptables -w -F LH-LOSSY-PROBE || exit 1\n"
        "iptables -w -A LH-LOSSY-PROBE -m statistic --mode random --probability 0.5 -j DROP "
        "2>/dev/null; rc=$?\n"
        "iptables -w -F LH-LOSSY-PROBE; iptables -w -X LH-LOSSY-PROBE\n"
        f"[ $rc -eq 0 ] || {_missing('the iptables statistic match is missing (xt_statistic)')}\n"
    )
    if slow:
        script += (
            f"command -v tc >/dev/null || {_missing('tc (iproute2) is not installed')}\n"
            "tc qdisc add dev lo root handle 4c47: htb 2>/dev/null; a=$?\n"
            "tc class add dev lo parent 4c47: classid 4c47:1 htb rate 1mbit 2>/dev/null; b=$?\n"
            "tc qdisc add dev lo parent 4c47:1 handle 4c46: tbf rate 1mbit burst 4000 "
            "latency 50ms 2>/dev/null; t=$?\n"
            "tc filter add dev lo parent 4c47: protocol ip prio 1 u32 match ip dst 127.0.0.2/32 "
            "flowid 4c47:1 2>/dev/null; u=$?\n"
            "if tc qdisc show dev lo root | grep -q '^qdisc htb 4c47: root'; then\n"
            "  tc qdisc del dev lo root\n"
            "fi\n"
            f"[ $a -eq 0 ] && [ $b -eq 0 ] || {_missing('the htb qdisc is missing')}\n"
            f"[ $t -eq 0 ] || {_missing('the tbf qdisc is missing')}\n"
            f"[ $u -eq 0 ] || {_missing('the u32 classifier is missing')}\n"
        )
    return script


class LossyFault:
    def __init__(
        self,
        cluster: Cluster,
        links: list[tuple[str, str]],
        probability: float,
        slow: Slow | None,
        value: dict[str, Any],
    ) -> None:
        self.cluster = cluster
        self.links = links
        self.probability = probability
        self.slow = slow
        self.value = value
        names = [n.name for n in cluster.nodes]
        self.peers = peers_of(links, names)
        self._by_name = {n.name: n for n in cluster.nodes}
        self.description = f"lossy {probability:g}: " + ", ".join(f"{a}-{b}" for a, b in links)
        self._lock = threading.Lock()
        self._healed = False

    def _addresses(self, node: Node) -> list[str]:
        host = self.cluster.backend.host_address
        out = [self._by_name[p].address for p in self.peers[node.name]]
        for a in out:
            # The scripts hold addresses unquoted: only plain IP addresses may go in.
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise FaultError(f"lossy: node address {a!r} is not an IP address") from None
            if a == host:
                raise FaultError(f"lossy: refusing to touch {a} on {node.name}: the host address")
        return out

    def apply(self) -> None:
        victims = [n for n in self.cluster.nodes if self.peers[n.name]]
        addresses = {n.name: self._addresses(n) for n in victims}

        scripts = {}
        for node in victims:
            scripts[node.name] = loss_script(addresses[node.name], self.probability)
            if self.slow is not None:
                scripts[node.name] += slow_script(addresses[node.name], self.slow)
        run_scripts(self.cluster, scripts, "lossy start", "lossy: iptables/tc")

    def heal(self) -> None:
        with self._lock:
            if self._healed:
                return
            # Every node: a failed start may have touched any of them.
            scripts = {n.name: heal_script() for n in self.cluster.nodes}
            run_scripts(self.cluster, scripts, "lossy heal", "lossy: removing its rules")
            self._healed = True
            self.cluster.record("stop-lossy", self.value)

    def __repr__(self) -> str:
        return f"LossyFault({self.description!r})"


class LossyNemesis:
    """Random packet loss, and optionally a slow link, by iptables and tc on each node."""

    name = "lossy"
    # Takes turns with the other faults that take a node or its links away: overlapping
    # two of them in a small cluster takes its quorum away (nemesis/schedule.py).
    timeline = "node"
    report_band = ReportBand("lossy", "start-lossy", "stop-lossy", "rgba(220, 104, 3, .15)")
    SETTINGS: Mapping[str, str] = {
        "modes": f"a list of {', '.join(MODES)}",
        "probability": "[min, max] probability of dropping a packet, 0 < min <= max <= 1",
        "slow": "a mapping rate_kbit, burst_bytes, latency_ms (tbf), or null for no shaping",
    }
    SLOW_KEYS: Mapping[str, str] = {
        "rate_kbit": "an integer from 8 to 10000000",
        "burst_bytes": "an integer from 1600 to 16000000, at least rate_kbit / 8",
        "latency_ms": "an integer from 1 to 60000",
    }

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        r = settings_reader(self.name, settings, self.SETTINGS)
        self.modes: tuple[str, ...] = r.subset("modes", MODES, MODES)
        lo, hi = r.pair(
            "probability", list(DEFAULT_PROBABILITY), 0.0, 1.0, what="[min, max] probability"
        )
        if lo <= 0:
            raise r.fail("probability[0]", "a probability above 0 (0 drops nothing)", lo)
        self.probability = (lo, hi)
        self.slow: Slow | None = None
        if r.get("slow") is not None:
            s = r.section("slow", "a mapping rate_kbit, burst_bytes, latency_ms, or null")
            s.only(self.SLOW_KEYS)
            rate = s.integer("rate_kbit", None, 8, 10_000_000)
            burst = s.integer("burst_bytes", 16_000, 1600, 16_000_000)
            # tbf needs room for at least one tick's worth of tokens at this rate (and a
            # full-size packet, hence 1600); less and it drops everything.
            if burst < rate // 8:
                raise s.fail("burst_bytes", f"at least rate_kbit / 8 = {rate // 8}", burst)
            latency = s.integer("latency_ms", 100, 1, 60_000)
            self.slow = Slow(rate, burst, latency)

    def refusal(self, cluster: Cluster) -> str | None:
        if len(cluster.nodes) < 2:
            return f"lossy: needs at least 2 nodes, this cluster has {len(cluster.nodes)}"
        if not cluster.backend.shares_clock:
            return (
                "lossy: not on remote (ssh) hosts: they are shared machines, the run's "
                "watchdog heals only the partition chain, and a qdisc on a host's real "
                "interface would shape its other traffic too; use partition there"
            )
        # One node answers for all: the kernel and the node image are the same everywhere
        # (the runner asks once per run, before any member starts).
        node = cluster.nodes[0]
        r = cluster.backend.run(node, ["sh", "-c", probe_script(self.slow is not None)])
        answer: str | None = None
        if r.returncode == PROBE_EXIT:
            answer = f"lossy: cannot work on {node.name}: {r.stdout.strip()}"
        elif r.returncode != 0:
            answer = (
                f"lossy: probing iptables/tc on {node.name} failed ({r.returncode}): "
                f"{(r.stderr or r.stdout).strip()}"
            )
        return answer

    def plan_params(self, mode: str, rng: random.Random) -> dict[str, Any]:
        return {"probability": round(rng.uniform(*self.probability), 3)}

    @staticmethod
    def fault_label(value: Mapping[str, Any]) -> str | None:
        links = value.get("links")
        where = ""
        if isinstance(links, list):
            where = " on " + ", ".join(
                "-".join(str(x) for x in link) for link in links if isinstance(link, list)
            )
        p = value.get("probability")
        loss = f" {p:.0%} loss" if isinstance(p, int | float) and not isinstance(p, bool) else ""
        slow = value.get("slow")
        shaped = ""
        if isinstance(slow, Mapping) and isinstance(slow.get("rate_kbit"), int):
            shaped = f", {slow['rate_kbit']} kbit/s"
        return f"lossy{loss}{shaped}{where}"

    def start(self, cluster: Cluster, plan: FaultPlan) -> LossyFault:
        probability = plan.params.get("probability", self.probability[0])
        if (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0 < probability <= 1
        ):
            raise FaultError(f"lossy: probability must be in (0, 1]; got {probability!r}")
        leader = cluster.leader() if plan.mode in ("one-link", "leader") else None
        names = [n.name for n in cluster.nodes]
        centre = None if leader is None else leader.name
        links, note = lossy_links(plan.mode, names, plan.pick, centre)
        nodes = [x for x in names if any(x in link for link in links)]
        value: dict[str, Any] = {
            "mode": plan.mode,
            "links": [list(link) for link in links],
            "nodes": nodes,
            "probability": float(probability),
        }
        if self.slow is not None:
            value["slow"] = self.slow.as_value()
        if note:
            value["note"] = note
        fault = LossyFault(cluster, links, float(probability), self.slow, value)
        start_or_undo(cluster, "start-lossy", value, fault.apply, fault.heal)
        return fault


__all__ = [
    "CHAIN",
    "HANDLE",
    "MODES",
    "LossyFault",
    "LossyNemesis",
    "Slow",
    "heal_script",
    "loss_script",
    "lossy_links",
    "peers_of",
    "probe_script",
    "slow_script",
]
