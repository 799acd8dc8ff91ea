"""Reference elector clusters as real processes on 127.0.0.1: election, failover, restart,
resign, config errors and clock skew. Every process is cleaned up by the fixture."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.elector.state import PersistentState, read_state_file
from harness.skewclock import Skew, write_skew

REPO = Path(__file__).resolve().parents[2]
SAFE = REPO / "configs" / "reference" / "safe.yaml"
NO_PERSIST = REPO / "configs" / "reference" / "unsafe-no-persist.yaml"

pytestmark = pytest.mark.integration


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http(
    port: int, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@dataclass
class Member:
    name: str
    api_port: int
    data_dir: Path
    clock_file: Path
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class Cluster:
    tmp: Path
    config: Path
    size: int = 3
    members: dict[str, Member] = field(default_factory=dict)
    peers: str = ""

    def __post_init__(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        ports = free_ports(2 * self.size)
        names = [f"n{i + 1}" for i in range(self.size)]
        self.peers = ",".join(f"{n}=127.0.0.1:{ports[i]}" for i, n in enumerate(names))
        for i, name in enumerate(names):
            self.members[name] = Member(
                name, ports[self.size + i], self.tmp / name, self.tmp / f"{name}.clock"
            )

    def start(self, name: str) -> None:
        m = self.members[name]
        m.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.elector",
                "--config",
                str(self.config),
                "--id",
                name,
                "--peers",
                self.peers,
                "--api",
                f"127.0.0.1:{m.api_port}",
                "--data-dir",
                str(m.data_dir),
                "--log-file",
                str(self.tmp / f"{name}.log"),
                "--clock-file",
                str(m.clock_file),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                http(m.api_port, "GET", "/status", timeout=0.5)
                return
            except OSError:
                assert m.proc.poll() is None, m.proc.stderr.read() if m.proc.stderr else ""
                time.sleep(0.02)
        raise AssertionError(f"{name} did not start serving its API")

    def start_all(self) -> None:
        for name in self.members:
            self.start(name)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        proc = self.members[name].proc
        assert proc is not None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=5)
        finally:
            self.members[name].proc = None

    def cleanup(self) -> None:
        for m in self.members.values():
            if m.proc is None:
                continue
            if m.proc.poll() is None:
                os.kill(m.proc.pid, signal.SIGCONT)
                m.proc.terminate()
                try:
                    m.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
            m.proc = None

    def running(self) -> list[str]:
        return [n for n, m in self.members.items() if m.proc is not None]

    def statuses(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        out = {}
        for name in names or self.running():
            out[name] = http(self.members[name].api_port, "GET", "/status")[1]
        return out

    def wait_agreed_leader(
        self, timeout: float = 5.0, check: Callable[[dict[str, dict[str, Any]]], None] | None = None
    ) -> tuple[str, int]:
        """Poll until every running member names the same leader in the same term."""
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            last = self.statuses()
            if check is not None:
                check(last)
            leaders = {s["leader"] for s in last.values()}
            terms = {s["term"] for s in last.values()}
            roles = [s["role"] for s in last.values()]
            one_leader = len(leaders) == 1 and None not in leaders and len(terms) == 1
            if one_leader and roles.count("leader") == 1:
                return leaders.pop(), terms.pop()
            time.sleep(0.02)
        raise AssertionError(f"no agreed leader within {timeout} s: {last}")


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    clusters: list[Cluster] = []

    def factory(config: Path = SAFE, size: int = 3) -> Cluster:
        cluster = Cluster(tmp_path / f"c{len(clusters)}", config, size)
        clusters.append(cluster)
        return cluster

    yield factory
    for cluster in clusters:
        cluster.cleanup()


class TermWatch:
    """Remembers each member's highest term seen; fails if a member's term goes down."""

    def __init__(self) -> None:
        self.highest: dict[str, int] = {}

    def __call__(self, statuses: dict[str, dict[str, Any]]) -> None:
        for name, status in statuses.items():
            assert status["term"] >= self.highest.get(name, 0), (name, status, self.highest)
            self.highest[name] = status["term"]


def test_one_leader_with_lease_and_clean_sigterm(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    cluster.start_all()
    leader, term = cluster.wait_agreed_leader()
    assert term >= 1
    leases = {n: http(m.api_port, "GET", "/lease")[1] for n, m in cluster.members.items()}
    assert leases[leader]["leader"] is True
    assert 0 < leases[leader]["lease_remaining_ns"] <= 205_000_000
    assert leases[leader]["term"] == term
    for name, lease in leases.items():
        if name != leader:
            assert lease == {"leader": False, "term": term, "lease_remaining_ns": 0}, lease
    code, won = http(
        cluster.members[leader].api_port, "POST", "/campaign", {"timeout_s": 2, "client": "a"}
    )
    assert code == 200 and won["leader"] is True and won["token"] == term * 1_000_000
    # The same client keeps its token; another client gets the next one, which fences it.
    _, again = http(cluster.members[leader].api_port, "POST", "/campaign", {"client": "a"})
    assert again["token"] == won["token"]
    _, other = http(cluster.members[leader].api_port, "POST", "/campaign", {"client": 7})
    assert other["token"] == won["token"] + 1
    assert http(cluster.members[leader].api_port, "GET", "/lease")[1]["token"] == other["token"]
    follower = next(n for n in cluster.members if n != leader)
    started = time.monotonic()
    code, lost = http(cluster.members[follower].api_port, "POST", "/campaign", {"timeout_s": 0.3})
    assert code == 200 and lost == {"leader": False, "term": term}
    assert time.monotonic() - started >= 0.3
    code, err = http(cluster.members[leader].api_port, "POST", "/campaign", {"timeout_s": "x"})
    assert code == 400 and "timeout_s" in err["error"]
    for name in list(cluster.members):
        assert cluster.stop(name, signal.SIGTERM) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_new_leader_after_leader_stops_and_terms_never_decrease(
    make_cluster: Callable[..., Cluster], sig: int
) -> None:
    cluster = make_cluster()
    cluster.start_all()
    watch = TermWatch()
    old, term = cluster.wait_agreed_leader(check=watch)
    cluster.stop(old, sig)
    new, new_term = cluster.wait_agreed_leader(timeout=5, check=watch)
    assert new != old and new_term > term
    cluster.start(old)
    leader, final_term = cluster.wait_agreed_leader(timeout=5, check=watch)
    # Pre-vote and stickiness: the returning node must not depose the healthy leader.
    assert (leader, final_term) == (new, new_term)


def test_restarted_node_keeps_term_and_vote(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    cluster.start_all()
    leader, term = cluster.wait_agreed_leader()
    before = cluster.statuses()
    for name in list(cluster.members):
        cluster.stop(name, signal.SIGKILL)
    for name, member in cluster.members.items():
        saved = read_state_file(member.data_dir)
        assert saved == PersistentState(before[name]["term"], before[name]["voted_for"])
        assert saved.term == term
    # Alone, the node cannot win a pre-vote, so nothing may move its term or vote.
    follower = next(n for n in cluster.members if n != leader)
    cluster.start(follower)
    for _ in range(10):
        status = cluster.statuses([follower])[follower]
        assert status["term"] == term
        # Its own vote, as persisted: in a split election it may have voted for a
        # candidate other than the one the third node elected, so not always `leader`.
        assert status["voted_for"] == before[follower]["voted_for"] is not None
        time.sleep(0.1)


def test_without_persistence_a_restarted_node_forgets(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(config=NO_PERSIST)
    cluster.start_all()
    leader, term = cluster.wait_agreed_leader()
    follower = next(n for n in cluster.members if n != leader)
    cluster.stop(follower, signal.SIGKILL)
    assert not (cluster.members[follower].data_dir / "state.json").exists()
    for name in list(cluster.running()):
        cluster.stop(name, signal.SIGKILL)
    cluster.start(follower)
    status = cluster.statuses([follower])[follower]
    # Checked before its first election timeout (300 ms after start): back to nothing.
    assert (status["term"], status["voted_for"]) == (0, None)
    assert term >= 1


def test_resign_hands_over_and_backs_off(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    cluster.start_all()
    old, term = cluster.wait_agreed_leader()
    code, body = http(cluster.members[old].api_port, "POST", "/resign", {"backoff_s": 3.0})
    assert code == 200 and body == {"ok": True, "term": term}
    started = time.monotonic()
    new, new_term = cluster.wait_agreed_leader(timeout=2)
    assert new != old and new_term > term
    assert time.monotonic() - started < 1.0  # leadership transfer, not an election timeout
    # The new leader resigns at once with no back-off; the old one must not win while its
    # own back-off lasts, so the third member takes over.
    http(cluster.members[new].api_port, "POST", "/resign", {"backoff_s": 0.0})
    while time.monotonic() - started < 2.5:
        status = cluster.statuses([old])[old]
        assert status["role"] != "leader"
        lease = http(cluster.members[old].api_port, "GET", "/lease")[1]
        assert lease["leader"] is False
        time.sleep(0.05)


def test_clock_rate_shortens_the_lease(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    cluster.start_all()
    leader, _ = cluster.wait_agreed_leader()
    port = cluster.members[leader].api_port
    followers = [cluster.members[n].proc for n in cluster.members if n != leader]

    def slope(duration: float) -> float:
        """Lease consumed per real second while no heartbeat is acknowledged."""
        first = http(port, "GET", "/lease")[1]["lease_remaining_ns"]
        t0 = time.monotonic_ns()
        time.sleep(duration)
        second = http(port, "GET", "/lease")[1]["lease_remaining_ns"]
        return (first - second) / (time.monotonic_ns() - t0)

    try:
        for proc in followers:
            assert proc is not None
            proc.send_signal(signal.SIGSTOP)
        normal = slope(0.08)
    finally:
        for proc in followers:
            assert proc is not None
            proc.send_signal(signal.SIGCONT)
    cluster.wait_agreed_leader()
    assert 0.7 < normal < 1.3
    write_skew(cluster.members[leader].clock_file, Skew(rate=2.0, since_ns=time.monotonic_ns()))
    time.sleep(0.3)
    leader2, _ = cluster.wait_agreed_leader()
    assert leader2 == leader
    try:
        for proc in followers:
            assert proc is not None
            proc.send_signal(signal.SIGSTOP)
        fast = slope(0.04)
        # With the followers frozen the lease runs out: on a clock at rate 2 within
        # 250 ms / 2 of real time, and the leader then says so.
        time.sleep(0.2)
        assert http(port, "GET", "/lease")[1] == {
            "leader": False,
            "term": cluster.statuses([leader])[leader]["term"],
            "lease_remaining_ns": 0,
        }
    finally:
        for proc in followers:
            assert proc is not None
            proc.send_signal(signal.SIGCONT)
    assert 1.6 < fast < 2.4


def test_config_error_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("heartbeat_interval_ms: 50\nelection_timeout_ms: abc\n")
    port, api = free_ports(2)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.elector",
            "--config",
            str(bad),
            "--id",
            "n1",
            "--peers",
            f"n1=127.0.0.1:{port}",
            "--api",
            f"127.0.0.1:{api}",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {bad}: key 'election_timeout_ms': expected")


def test_single_node_cluster_leads_alone(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(size=1)
    cluster.start_all()
    leader, term = cluster.wait_agreed_leader()
    assert leader == "n1" and term == 1
    code, won = http(cluster.members["n1"].api_port, "POST", "/campaign", {})
    assert code == 200 and won["leader"] is True and won["token"] == 1_000_000


def test_paused_leader_answers_not_leader_right_after_sigcont(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster()
    cluster.start_all()
    old, term = cluster.wait_agreed_leader()
    proc = cluster.members[old].proc
    assert proc is not None
    others = [n for n in cluster.members if n != old]
    proc.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            statuses = cluster.statuses(others)
            if any(s["role"] == "leader" for s in statuses.values()):
                break
            time.sleep(0.02)
        else:
            raise AssertionError("no new leader while the old one was paused")
    finally:
        proc.send_signal(signal.SIGCONT)
    # The first answer after SIGCONT must already reflect the expired lease.
    lease = http(cluster.members[old].api_port, "GET", "/lease")[1]
    assert lease["leader"] is False and lease["lease_remaining_ns"] == 0
    new, new_term = cluster.wait_agreed_leader()
    assert new != old and new_term > term
