"""The running cluster as the runner and the nemeses see it: members and candidates.

It owns the member and candidate daemons of every node, restarts them after kills, and
gives each candidate incarnation a new process id (Jepsen's convention: a crashed
process never comes back; the runner records `crash` for the old id).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from harness.backends.base import Backend, Daemon, Node
from harness.recorder import T0_ENV, Recorder
from harness.run.probe import StatusProbe
from harness.targets.base import ClockControl, Target
from workloads.settings import CandidateSettings

KILL_WAIT_S = 5.0
TAIL_BYTES = 16384


def holding_since(history: Path) -> int | None:
    """When the candidate writing `history` acquired, if its latest word on the election
    is still that acquisition (no `lost`, `release` or new `acquire` since). Reads back
    from the end, in growing windows, only as far as the latest such word."""
    try:
        with open(history, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            window = TAIL_BYTES
            while True:
                start = max(0, size - window)
                f.seek(start)
                lines = f.read(size - start).splitlines()
                if start > 0:
                    lines = lines[1:]  # the first line read may be cut
                found, since = _latest_word(lines)
                if found or start == 0:
                    return since
                window *= 4
    except OSError:
        return None


def _latest_word(lines: list[bytes]) -> tuple[bool, int | None]:
    for line in reversed(lines):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line being written
        f_name, etype = event.get("f"), event.get("type")
        if f_name == "acquire" and etype == "ok":
            return True, int(event["time"])
        if f_name in ("acquire", "release", "lost") and (f_name != "acquire" or etype == "invoke"):
            return True, None
    return False, None


def _wait_gone(daemon: Daemon, timeout: float = KILL_WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while daemon.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


class RunCluster:
    def __init__(
        self,
        *,
        backend: Backend,
        nodes: Sequence[Node],
        target: Target,
        recorder: Recorder,
        run_dir: Path,
        resource_url: str,
        workload: CandidateSettings,
        workload_explicit: dict[str, Any],
        seed: int,
    ) -> None:
        self.backend = backend
        self.nodes = list(nodes)
        self.target = target
        self._rec = recorder
        self._run_dir = run_dir
        self._resource_url = resource_url
        self._workload = workload
        self._workload_explicit = workload_explicit
        self._seed = seed
        self._members: dict[str, Daemon | None] = {n.name: None for n in self.nodes}
        self._candidates: dict[str, tuple[Daemon, int] | None] = {n.name: None for n in self.nodes}
        self._incarnations = dict.fromkeys((n.name for n in self.nodes), 0)
        self._lock = threading.RLock()
        self.probe: StatusProbe | None = None

    # --- members ---------------------------------------------------------------------

    def member(self, node: Node) -> Daemon | None:
        with self._lock:
            return self._members[node.name]

    def start_member(self, node: Node) -> None:
        with self._lock:
            current = self._members[node.name]
            if current is not None and current.poll() is None:
                return
            self._members[node.name] = self.target.start_member(node)

    def kill_member(self, node: Node) -> None:
        with self._lock:
            daemon = self._members[node.name]
            self._members[node.name] = None
        if daemon is not None and daemon.poll() is None:
            daemon.signal(signal.SIGKILL)
            _wait_gone(daemon)

    # --- candidates ------------------------------------------------------------------

    def candidate(self, node: Node) -> Daemon | None:
        with self._lock:
            entry = self._candidates[node.name]
            return None if entry is None else entry[0]

    def process_id(self, node: Node) -> int | None:
        with self._lock:
            entry = self._candidates[node.name]
            return None if entry is None else entry[1]

    def start_candidate(self, node: Node) -> None:
        with self._lock:
            entry = self._candidates[node.name]
            if entry is not None and entry[0].poll() is None:
                return
            index = self.nodes.index(node)
            process = index + 1 + len(self.nodes) * self._incarnations[node.name]
            self._incarnations[node.name] += 1
            spec = self.target.candidate(node)
            # The target's candidate defaults, then whatever the run's YAML set itself.
            settings = {**self._workload.to_dict(), **spec.settings, **self._workload_explicit}
            argv = [
                self.backend.python, "-m", "workloads.candidate",
                "--process", str(process),
                "--node", node.name,
                "--adapter", spec.adapter,
                "--endpoint", spec.endpoint,
                "--resource", self._resource_url,
                "--history", str(self._run_dir / "history" / f"p{process}.jsonl"),
                "--clock-file", self.candidate_clock_file(node),
                "--settings", json.dumps(settings),
                "--adapter-options", json.dumps(spec.options),
                "--seed", str(self._seed),
            ]  # fmt: skip
            daemon = self.backend.spawn(
                node,
                f"candidate-p{process}",
                argv,
                env={T0_ENV: str(self._rec.clock.origin_ns)},
                log_path=self._run_dir / "logs" / f"{node.name}-candidate.log",
            )
            self._candidates[node.name] = (daemon, process)

    def kill_candidate(self, node: Node) -> None:
        with self._lock:
            entry = self._candidates[node.name]
            self._candidates[node.name] = None
        if entry is None:
            return
        daemon, process = entry
        if daemon.poll() is None:
            daemon.signal(signal.SIGKILL)
            _wait_gone(daemon)
        self._rec.record(process, "info", "crash", {"signal": "SIGKILL"}, node=node.name)

    def stop_candidates(self) -> None:
        """End of the run: SIGCONT+SIGTERM every candidate (their open operations stay
        open, which the history allows)."""
        with self._lock:
            entries = [e for e in self._candidates.values() if e is not None]
            self._candidates = dict.fromkeys(self._candidates)
        for daemon, _ in entries:
            daemon.stop(timeout=3.0)

    def stop_members(self) -> None:
        with self._lock:
            daemons = [d for d in self._members.values() if d is not None]
            self._members = dict.fromkeys(self._members)
        for daemon in daemons:
            daemon.stop(timeout=3.0)

    def _current(self, node: Node, kind: str) -> Daemon | None:
        if kind == "member":
            return self._members[node.name]
        entry = self._candidates[node.name]
        return None if entry is None else entry[0]

    def exited_on_their_own(self) -> list[str]:
        """Members and candidates that ended without a nemesis or the runner stopping
        them (a kill clears the entry before it signals), one line each."""
        kinds = ("member", "candidate")
        with self._lock:
            running = [
                (node, kind, daemon)
                for node in self.nodes
                for kind in kinds
                if (daemon := self._current(node, kind)) is not None
            ]
        problems = []
        for node, kind, daemon in running:
            status = daemon.poll()
            with self._lock:
                still_current = self._current(node, kind) is daemon
            if status is not None and still_current:
                problems.append(
                    f"{daemon.name} on {node.name} exited on its own with status {status} "
                    f"(logs in {self._run_dir / 'logs'})"
                )
        return problems

    # --- what nemeses ask ------------------------------------------------------------

    def leader(self) -> Node | None:
        name = self.probe.leader() if self.probe is not None else None
        return next((n for n in self.nodes if n.name == name), None)

    def holder(self) -> Node | None:
        """The node whose live candidate most recently acquired and still believes it
        holds the election, read from the tails of the candidates' history files."""
        with self._lock:
            live = [(n, e[1]) for n in self.nodes if (e := self._candidates[n.name]) is not None]
        best: tuple[int, Node] | None = None
        for node, process in live:
            since = holding_since(self._run_dir / "history" / f"p{process}.jsonl")
            if since is not None and (best is None or since > best[0]):
                best = (since, node)
        return None if best is None else best[1]

    def member_clock_file(self, node: Node) -> str | None:
        if isinstance(self.target, ClockControl):
            return self.target.member_clock_file(node)
        return None

    def candidate_clock_file(self, node: Node) -> str:
        return str(self._run_dir / "nodes" / node.name / "candidate-clock.json")

    def record(self, f: str, value: dict[str, Any]) -> None:
        self._rec.record("nemesis", "info", f, value)
