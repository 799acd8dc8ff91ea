"""Nemesis test doubles: a `FakeCluster` that satisfies the `Cluster` protocol a nemesis
is written against, over a `FakeBackend` that records every command a nemesis runs on a
node (and can be told to fail some). With them a nemesis's start and heal can be tested
without a machine: what it ran where, which hooks it called, what it recorded.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import BackendError, Node, RunResult, SameHost
from harness.nemesis.clock import WRITE_SH

HOST = "10.213.9.1"


class FakeBackend(SameHost):
    name = "fake"
    run_id = "r"
    host_address = HOST
    python = "python3"

    def __init__(self, execute_writes: bool = False) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail: dict[tuple[str, str], RunResult] = {}  # (node, marker in argv) -> result
        self.execute_writes = execute_writes
        self.lock = threading.Lock()

    def run(self, node: Node, argv: Sequence[str], timeout: float = 10.0) -> RunResult:
        argv = list(argv)
        with self.lock:
            self.calls.append((node.name, argv))
        text = " ".join(argv)
        for (name, marker), result in self.fail.items():
            if name == node.name and marker in text:
                return result
        if self.execute_writes and argv[:3] == ["sh", "-c", WRITE_SH]:
            # Run the nemesis's real writer, on a file under tmp_path.
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
            return RunResult(p.returncode, p.stdout, p.stderr)
        return RunResult(0, "", "")

    def of(self, node: str, marker: str = "") -> list[list[str]]:
        return [a for n, a in self.calls if n == node and marker in " ".join(a)]


class FakeDaemon:
    def __init__(self, name: str, node: Node) -> None:
        self.name = name
        self.node = node
        self.signals: list[int] = []
        self.exit: int | None = None

    @property
    def pid(self) -> int:
        return 4242

    def signal(self, signum: int) -> None:
        if self.exit is not None:
            raise BackendError(f"daemon {self.name} has already exited")
        self.signals.append(signum)

    def stop(self, timeout: float = 5.0) -> int | None:
        self.exit = 0
        return 0

    def poll(self) -> int | None:
        return self.exit


class FakeCluster:
    def __init__(
        self,
        n: int = 3,
        leader: str | None = None,
        backend: FakeBackend | None = None,
        clock_dir: Path | None = None,
        member_clock: bool = True,
        holder: str | None = None,
    ) -> None:
        self.backend = backend or FakeBackend()
        self.holder_name = holder
        self.nodes = [Node(f"n{i}", f"10.213.9.{10 + i}", f"ns-n{i}") for i in range(1, n + 1)]
        self.leader_name = leader
        self.members: dict[str, FakeDaemon | None] = {
            x.name: FakeDaemon("member", x) for x in self.nodes
        }
        self.candidates: dict[str, FakeDaemon | None] = {
            x.name: FakeDaemon("candidate", x) for x in self.nodes
        }
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.hooks: list[tuple[str, str]] = []
        self.fail_hook: set[tuple[str, str]] = set()
        self.clock_dir = clock_dir or Path("/nonexistent")
        self.member_clock = member_clock

    def node(self, name: str) -> Node:
        return next(x for x in self.nodes if x.name == name)

    def member(self, node: Node) -> FakeDaemon | None:
        return self.members[node.name]

    def candidate(self, node: Node) -> FakeDaemon | None:
        return self.candidates[node.name]

    def _hook(self, hook: str, node: Node) -> None:
        self.hooks.append((hook, node.name))
        if (hook, node.name) in self.fail_hook:
            raise RuntimeError(f"{hook} failed on {node.name}")

    def kill_member(self, node: Node) -> None:
        self._hook("kill_member", node)

    def start_member(self, node: Node) -> None:
        self._hook("start_member", node)

    def kill_candidate(self, node: Node) -> None:
        self._hook("kill_candidate", node)

    def start_candidate(self, node: Node) -> None:
        self._hook("start_candidate", node)

    def leader(self) -> Node | None:
        return None if self.leader_name is None else self.node(self.leader_name)

    def holder(self) -> Node | None:
        return None if self.holder_name is None else self.node(self.holder_name)

    def member_clock_file(self, node: Node) -> str | None:
        return str(self.clock_dir / f"{node.name}-member.json") if self.member_clock else None

    def candidate_clock_file(self, node: Node) -> str:
        return str(self.clock_dir / f"{node.name}-candidate.json")

    def record(self, f: str, value: dict[str, Any]) -> None:
        self.events.append((f, json.loads(json.dumps(value))))  # JSON-able, and a snapshot


__all__ = ["HOST", "FakeBackend", "FakeCluster", "FakeDaemon"]
