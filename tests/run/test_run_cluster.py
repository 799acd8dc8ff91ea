"""The run's cluster bookkeeping: which candidate holds the election (read from its
history's tail), and which daemons ended on their own."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.backends.base import Node, SameHost
from harness.history import HistoryWriter
from harness.recorder import Recorder, RefClock
from harness.run.cluster import TAIL_BYTES, RunCluster, holding_since
from harness.targets.base import CandidateSpec
from harness.workloads.settings import CandidateSettings


def write(path: Path, events: list[tuple[int, str, str]], tail: bytes = b"") -> Path:
    lines = [
        orjson.dumps({"time": t, "process": 1, "type": etype, "f": f}) for t, etype, f in events
    ]
    path.write_bytes(b"\n".join(lines) + b"\n" + tail)
    return path


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([(1, "invoke", "acquire"), (2, "ok", "acquire")], 2),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "invoke", "write")], 2),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "info", "lost")], None),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "invoke", "release")], None),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "ok", "release")], None),
        ([(1, "invoke", "acquire"), (2, "fail", "acquire")], None),
        ([(2, "ok", "acquire"), (3, "info", "lost"), (4, "invoke", "acquire")], None),
        ([], None),
    ],
)
def test_latest_word_on_the_election(
    tmp_path: Path, events: list[tuple[int, str, str]], expected: int | None
) -> None:
    assert holding_since(write(tmp_path / "p1.jsonl", events)) == expected


def test_a_half_written_line_and_a_long_file(tmp_path: Path) -> None:
    writes = [(10 + i, "invoke", "write") for i in range(TAIL_BYTES // 40)]
    path = write(
        tmp_path / "p1.jsonl",
        [(1, "invoke", "acquire"), (2, "ok", "acquire"), *writes],
        tail=b'{"time": 99999, "process": 1, "ty',
    )
    assert path.stat().st_size > TAIL_BYTES
    # The acquisition is far behind the tail: read back until it is found.
    assert holding_since(path) == 2
    path = write(tmp_path / "p2.jsonl", [(1, "invoke", "acquire"), (2, "ok", "acquire")], b'{"ti')
    assert holding_since(path) == 2
    assert holding_since(tmp_path / "missing.jsonl") is None


# --- daemons that end on their own ---------------------------------------------------


class FakeDaemon:
    def __init__(self, name: str, node: Any) -> None:
        self.name = name
        self.node = node
        self.status: int | None = None
        self.signals: list[int] = []

    @property
    def pid(self) -> int:
        return 4242

    def signal(self, signum: int) -> None:
        self.signals.append(signum)
        if signum == signal.SIGKILL:
            self.status = -9

    def poll(self) -> int | None:
        return self.status

    def stop(self, timeout: float = 5.0) -> int | None:
        self.status = 0
        return 0


class FakeBackend(SameHost):
    python = "python3"

    def spawn(self, node: Any, name: str, argv: Any, *, env: Any = None, log_path: Any) -> Any:
        return FakeDaemon(name, node)


class FakeTarget:
    def start_member(self, node: Any) -> Any:
        return FakeDaemon("etcd", node)

    def candidate(self, node: Any) -> CandidateSpec:
        return CandidateSpec("etcd", "http://x", {})


def test_a_daemon_that_exits_on_its_own_is_reported_and_a_killed_one_is_not(
    tmp_path: Path,
) -> None:
    nodes = [Node(f"n{i}", f"10.213.9.1{i}", f"h{i}") for i in (1, 2)]
    recorder = Recorder(HistoryWriter(tmp_path / "runner.jsonl"), RefClock())
    cluster = RunCluster(
        backend=FakeBackend(),  # type: ignore[arg-type]
        nodes=nodes,
        target=FakeTarget(),  # type: ignore[arg-type]
        recorder=recorder,
        run_dir=tmp_path,
        resource_url="http://10.213.9.1:1",
        workload=CandidateSettings(),
        workload_explicit={},
        seed=1,
    )
    for node in nodes:
        cluster.start_member(node)
        cluster.start_candidate(node)
    assert cluster.exited_on_their_own() == []
    cluster.kill_member(nodes[0])  # a nemesis: not "on its own"
    cluster.kill_candidate(nodes[1])
    assert cluster.exited_on_their_own() == []
    cluster.candidate(nodes[0]).status = 1  # type: ignore[union-attr]
    cluster.member(nodes[1]).status = 2  # type: ignore[union-attr]
    problems = cluster.exited_on_their_own()
    assert len(problems) == 2
    assert problems[0].startswith("candidate-p1 on n1 exited on its own with status 1")
    assert problems[1].startswith("etcd on n2 exited on its own with status 2")
    recorder.close()


def test_a_candidate_killed_while_frozen_crashed_when_it_froze(tmp_path: Path) -> None:
    """A frozen process never runs again once killed: its `crash` is stamped when it
    froze, so its belief does not stretch over the freeze (pause and kill overlap)."""
    nodes = [Node(f"n{i}", f"10.213.9.1{i}", f"h{i}") for i in (1, 2)]
    recorder = Recorder(HistoryWriter(tmp_path / "runner.jsonl"), RefClock())
    cluster = RunCluster(
        backend=FakeBackend(),  # type: ignore[arg-type]
        nodes=nodes,
        target=FakeTarget(),  # type: ignore[arg-type]
        recorder=recorder,
        run_dir=tmp_path,
        resource_url="http://10.213.9.1:1",
        workload=CandidateSettings(),
        workload_explicit={},
        seed=1,
    )
    for node in nodes:
        cluster.start_candidate(node)
    frozen, resumed = (cluster.candidate(n) for n in nodes)
    assert frozen is not None and resumed is not None
    frozen.signal(signal.SIGSTOP)
    resumed.signal(signal.SIGSTOP)
    resumed.signal(signal.SIGCONT)
    frozen_at = recorder.clock.now()
    time.sleep(0.05)
    cluster.kill_candidate(nodes[0])
    cluster.kill_candidate(nodes[1])
    recorder.close()
    crashes = [orjson.loads(line) for line in (tmp_path / "runner.jsonl").read_bytes().splitlines()]
    first, second = (e for e in crashes if e["f"] == "crash")
    assert first["value"] == {"signal": "SIGKILL", "frozen": True}
    assert first["time"] <= frozen_at  # not the kill's time, 50 ms later
    assert second["value"] == {"signal": "SIGKILL"}  # resumed before the kill: now
    assert second["time"] > frozen_at + 40_000_000
