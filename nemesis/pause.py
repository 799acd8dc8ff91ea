"""The pause nemesis: SIGSTOP a node's member and/or candidate, SIGCONT them at heal.

Modes name the processes: `member`, `candidate` or `both`. The plan's `target` param
says which nodes (one, leader, follower, minority, majority, all). A pause is how a
stop-the-world GC or a swapped-out VM looks from outside: the process keeps its sockets
and its beliefs, and wakes up later thinking no time has passed.

Heal continues exactly the daemon objects that were stopped (not whatever runs on the
node by then), so a daemon restarted meanwhile is never signalled by mistake. A daemon
that is absent or has already exited is skipped, and the event says so.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Mapping
from typing import Any

from harness.backends.base import BackendError, Daemon, Node
from nemesis._common import (
    PROCESSES,
    TARGETS,
    check_keys,
    choose_nodes,
    start_or_undo,
    subset,
)
from nemesis.base import Cluster, FaultPlan


def daemons_of(cluster: Cluster, node: Node, processes: str) -> list[tuple[str, Daemon | None]]:
    """(kind, daemon) for the processes a mode names on `node`, member first."""
    out: list[tuple[str, Daemon | None]] = []
    if processes in ("member", "both"):
        out.append(("member", cluster.member(node)))
    if processes in ("candidate", "both"):
        out.append(("candidate", cluster.candidate(node)))
    return out


class PauseFault:
    def __init__(self, cluster: Cluster, nodes: list[Node], processes: str, value: dict[str, Any]):
        self.cluster = cluster
        self.nodes = nodes
        self.processes = processes
        self.value = value
        self.description = f"pause {processes} on {', '.join(n.name for n in nodes)}"
        self.stopped: list[tuple[Node, str, Daemon]] = []
        self.skipped: list[str] = []
        self._lock = threading.Lock()
        self._healed = False

    def apply(self) -> None:
        for node in self.nodes:
            for kind, daemon in daemons_of(self.cluster, node, self.processes):
                if daemon is None or daemon.poll() is not None:
                    self.skipped.append(f"{node.name} {kind}: not running")
                    continue
                try:
                    daemon.signal(signal.SIGSTOP)
                except BackendError as exc:
                    # It exited between poll and signal: nothing to pause.
                    self.skipped.append(f"{node.name} {kind}: {exc}")
                    continue
                self.stopped.append((node, kind, daemon))
        # Nothing stopped (every chosen process was down) is not an error of the run:
        # the event says what was skipped.
        if self.skipped:
            self.value["skipped"] = list(self.skipped)

    def heal(self) -> None:
        with self._lock:
            if self._healed:
                return
            skipped = []
            for node, kind, daemon in self.stopped:
                try:
                    daemon.signal(signal.SIGCONT)
                except BackendError as exc:
                    # Killed while paused (a teardown, another fault): nothing to resume.
                    skipped.append(f"{node.name} {kind}: {exc}")
            self._healed = True
            value = dict(self.value)
            if skipped:
                value["skipped"] = [*value.get("skipped", []), *skipped]
            self.cluster.record("resume", value)

    def __repr__(self) -> str:
        return f"PauseFault({self.description!r})"


class PauseNemesis:
    """SIGSTOP/SIGCONT of members and candidates."""

    name = "pause"
    SETTINGS: Mapping[str, str] = {
        "modes": f"a list of {', '.join(PROCESSES)}",
        "targets": f"a list of {', '.join(TARGETS)}",
    }

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        settings = {} if settings is None else settings
        check_keys(self.name, settings, self.SETTINGS)
        self.modes: tuple[str, ...] = subset(
            self.name, "modes", settings.get("modes", PROCESSES), PROCESSES
        )
        self.targets = subset(self.name, "targets", settings.get("targets", TARGETS), TARGETS)

    def refusal(self, cluster: Cluster) -> str | None:
        return None  # every backend can signal its daemons

    def plan_params(self, mode: str, rng: random.Random) -> dict[str, Any]:
        return {"target": rng.choice(self.targets)}

    def start(self, cluster: Cluster, plan: FaultPlan) -> PauseFault:
        target = plan.params.get("target", "one")
        nodes, note = choose_nodes(cluster, target, plan.pick)
        value: dict[str, Any] = {
            "nodes": [n.name for n in nodes],
            "processes": plan.mode,
            "target": target,
        }
        if note:
            value["note"] = note
        fault = PauseFault(cluster, nodes, plan.mode, value)
        start_or_undo(cluster, "pause", value, fault.apply, fault.heal)
        return fault
