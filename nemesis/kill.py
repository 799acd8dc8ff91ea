"""The kill nemesis: SIGKILL a node's member and/or candidate, restart them at heal.

Modes name the processes: `member`, `candidate` or `both`. The plan's `target` param
says which nodes: one, leader, follower, minority, majority or all. `all` matters: every
member killed and then all restarted is what exposes an elector that keeps its votes or
term only in memory (after the restart it may vote twice in one term).

Killing goes through the cluster's hooks (`kill_member`, `kill_candidate`), which wait
until the process is gone and record a candidate's `crash`; heal restarts through
`start_member` / `start_candidate`, members before candidates since a candidate needs
its member. Heal retries only what has not been restarted yet, so it is idempotent.

Several members come back in a seeded order (`restart_order` in the event, drawn from
the plan's pick), as nodes do after a real power cut: restarted in node order, the first
node always got a head start on its election timer and won the first term again, so an
elector that forgets its term re-issued the same term to the same leader and the bug
went unseen (docker's slower restarts made that the rule).
"""

from __future__ import annotations

import random
import threading
from typing import Any

from harness.backends.base import Node
from harness.nemesis._common import FaultError, ProcessNemesis
from harness.nemesis.base import Cluster, FaultPlan, ReportBand


def kinds(processes: str) -> list[str]:
    return [k for k in ("member", "candidate") if processes in (k, "both")]


class KillFault:
    def __init__(self, cluster: Cluster, nodes: list[Node], processes: str, value: dict[str, Any]):
        self.cluster = cluster
        self.nodes = nodes
        self.processes = processes
        self.value = value
        self.description = f"kill {processes} on {', '.join(n.name for n in nodes)}"
        self.killed: list[tuple[Node, str]] = []
        self._restarted: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._healed = False

    def apply(self) -> None:
        for node in self.nodes:
            for kind in kinds(self.processes):
                # Recorded before the call: a kill that raised may still have killed.
                self.killed.append((node, kind))
                if kind == "member":
                    self.cluster.kill_member(node)
                else:
                    self.cluster.kill_candidate(node)

    def heal(self) -> None:
        with self._lock:
            if self._healed:
                return
            errors = []
            rank = {name: i for i, name in enumerate(self.value.get("restart_order", ()))}
            killed = sorted(self.killed, key=lambda nk: rank.get(nk[0].name, len(rank)))
            for kind in ("member", "candidate"):
                for node, k in killed:
                    if k != kind or (node.name, kind) in self._restarted:
                        continue
                    try:
                        if kind == "member":
                            self.cluster.start_member(node)
                        else:
                            self.cluster.start_candidate(node)
                    except Exception as exc:
                        errors.append(f"{node.name} {kind}: {exc}")
                        continue
                    self._restarted.add((node.name, kind))
            if errors:
                raise FaultError(f"{self.description}: restart failed: " + "; ".join(errors))
            self._healed = True
            self.cluster.record("restart", self.value)

    def __repr__(self) -> str:
        return f"KillFault({self.description!r})"


class KillNemesis(ProcessNemesis):
    """SIGKILL and restart of members and candidates."""

    name = "kill"
    report_band = ReportBand("kill", "kill", "restart", "rgba(16, 24, 40, .22)")
    event = "kill"
    fault_class = KillFault

    def refusal(self, cluster: Cluster) -> str | None:
        return None  # every target can be restarted through the cluster's hooks

    def fault_value(self, nodes: list[Node], plan: FaultPlan) -> dict[str, Any]:
        if len(nodes) < 2:
            return {}
        order = [n.name for n in nodes]
        # Its own stream from the pick: choose_nodes draws the nodes from Random(pick),
        # and the order should not follow from which nodes a majority kill chose.
        random.Random(plan.pick ^ 0x5EED).shuffle(order)
        return {"restart_order": order}
