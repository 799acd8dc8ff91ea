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

import signal
import threading
from typing import Any

from harness.backends.base import BackendError, Daemon, Node
from harness.nemesis._common import ProcessNemesis
from harness.nemesis.base import Cluster, ReportBand


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


class PauseNemesis(ProcessNemesis):
    """SIGSTOP/SIGCONT of members and candidates."""

    name = "pause"
    report_band = ReportBand("pause", "pause", "resume", "rgba(21, 112, 239, .16)")
    event = "pause"
    fault_class = PauseFault

    def refusal(self, cluster: Cluster) -> str | None:
        return None  # every backend can signal its daemons
