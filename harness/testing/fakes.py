"""Runner-level test doubles: a backend, its daemons and a target that create nothing.

`FakeBackend`, `FakeDaemon` and `FakeTarget` satisfy the `Backend`, `Daemon` and
`Target` protocols without creating anything: nodes are names, daemons are records
that answer `poll` and `stop`, and a target's members all name one leader (or what a
test tells them to answer). Every call that makes or undoes something is appended to one
shared `Journal`, so a test can assert what a run did and in which order, for example
that a runner undid everything it made, in reverse.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import Node, RunResult, SameHost
from harness.targets.base import CandidateSpec, MemberView


class Journal(list[str]):
    """What the fakes were asked to do, one line per call, in order."""

    def index_of(self, line: str) -> int:
        """Position of `line`; AssertionError (listing the journal) if it never happened."""
        if line not in self:
            raise AssertionError(f"{line!r} not in the journal: {list(self)}")
        return self.index(line)


class FakeDaemon:
    """A daemon that runs until it is stopped or killed (or a test sets `status`)."""

    def __init__(self, name: str, node: Node, journal: Journal, pid: int = 4242) -> None:
        self.name = name
        self.node = node
        self.status: int | None = None
        self.signals: list[int] = []
        self._journal = journal
        self._pid = pid

    @property
    def pid(self) -> int:
        return self._pid

    def signal(self, signum: int) -> None:
        self.signals.append(signum)
        if signum == signal.SIGKILL:
            self.status = -signal.SIGKILL

    def poll(self) -> int | None:
        return self.status

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.status is None:
            self._journal.append(f"stop {self.name} on {self.node.name}")
            self.status = -signal.SIGTERM
        return self.status


class FakeBackend(SameHost):
    """Nodes on loopback that exist only as names. `fail_spawn` names a daemon
    (`"candidate-p2"`) whose start fails, to drive a half-done run."""

    name = "fake"
    python = sys.executable

    def __init__(self, run_id: str = "fake", journal: Journal | None = None) -> None:
        self.run_id = run_id
        self.host_address = "127.0.0.1"
        self.journal = journal if journal is not None else Journal()
        self.nodes: list[Node] = []
        self.daemons: list[FakeDaemon] = []
        self.commands: list[tuple[str, list[str]]] = []
        self.fail_spawn: str | None = None
        self.torn_down = False

    def provision(self, names: Sequence[str], shared_dir: Path | None = None) -> list[Node]:
        self.journal.append("provision " + ",".join(names))
        self.nodes = [Node(n, "127.0.0.1", f"fake-{n}") for n in names]
        return list(self.nodes)

    def run(self, node: Node, argv: Sequence[str], timeout: float = 10.0) -> RunResult:
        self.commands.append((node.name, list(argv)))
        return RunResult(0, "", "")

    def spawn(
        self,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> FakeDaemon:
        from harness.backends.base import BackendError

        if name == self.fail_spawn:
            raise BackendError(f"fake backend: {name} on {node.name} failed to start")
        self.journal.append(f"spawn {name} on {node.name}")
        if "--history" in argv:
            # A candidate records its first campaign as soon as it starts; the runner
            # waits for that before the schedule's clock starts.
            path = Path(argv[list(argv).index("--history") + 1])
            path.parent.mkdir(parents=True, exist_ok=True)
            process = argv[list(argv).index("--process") + 1] if "--process" in argv else 1
            event = {"time": 0, "process": int(process), "type": "invoke", "f": "acquire"}
            path.write_text(json.dumps({**event, "node": node.name}) + "\n")
        daemon = FakeDaemon(name, node, self.journal, pid=10_000 + len(self.daemons))
        self.daemons.append(daemon)
        return daemon

    def teardown(self) -> None:
        self.journal.append("teardown")
        self.torn_down = True
        for daemon in self.daemons:
            if daemon.status is None:
                daemon.status = -signal.SIGKILL


class FakeTarget:
    """Members that all name `leader` in term 1, unless `answer` says otherwise: a
    function of the node's name returning a view, None (no answer), or raising (a
    malformed answer)."""

    name = "fake"
    stale_grace_ns = 0

    def __init__(self, backend: FakeBackend, leader: str = "n1") -> None:
        self.backend = backend
        self.journal = backend.journal
        self.leader = leader
        self.answer: Callable[[str], MemberView | None] | None = None

    @property
    def nemesis_defaults(self) -> dict[str, dict[str, Any]]:
        return {}

    def setup(self, backend: Any, nodes: Sequence[Node], run_dir: Path) -> None:
        self.journal.append("setup")

    def start_member(self, node: Node) -> FakeDaemon:
        return self.backend.spawn(node, "member", ["member"], log_path=Path("/dev/null"))

    def candidate(self, node: Node) -> CandidateSpec:
        return CandidateSpec("reference", f"http://{node.address}:1", {})

    def probe(self, node: Node, timeout: float) -> MemberView | None:
        if self.answer is not None:
            return self.answer(node.name)
        return MemberView(node.name, self.leader, 1)

    def close(self) -> None:
        self.journal.append("close target")


__all__ = ["FakeBackend", "FakeDaemon", "FakeTarget", "Journal"]
