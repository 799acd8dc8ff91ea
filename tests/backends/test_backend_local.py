"""Tests of the local backend: names and state files (no root), real namespaces (root).

The integration tests create real namespaces, bridges and FORWARD rules on this machine;
each one tears down in a fixture and then checks that nothing of its run is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends import BACKENDS, create_backend
from harness.backends import netns as nx
from harness.backends.base import BackendError, Daemon, Node
from harness.backends.local import LocalBackend, clean_leftovers
from tests.netcheck import PY, HostEcho, start_echo, tcp

NOT_ROOT = os.geteuid() != 0
needs_root = pytest.mark.skipif(
    NOT_ROOT, reason="the local backend needs root to create network namespaces"
)

# ----------------------------------------------------------------------------- unit tests


def test_names_fit_ifnamsiz_and_are_unique() -> None:
    nodes = [f"n{i}" for i in range(1, 245)]
    a = nx.make_names("0a1b2c", 7, nodes)
    b = nx.make_names("0a1b2d", 8, nodes)
    for names in (a, b):
        assert len(names.bridge) <= nx.IFNAMSIZ
        assert all(len(n.veth) <= nx.IFNAMSIZ for n in names.nodes)
        assert len({n.veth for n in names.nodes}) == len(nodes)
        assert len({n.netns for n in names.nodes}) == len(nodes)
        assert len({n.address for n in names.nodes}) == len(nodes)
    assert a.bridge == "lhb0a1b2c"
    assert a.nodes[0].netns == "lh-0a1b2c-n1"
    assert a.nodes[0].veth == "lh0a1b2cn1"
    assert a.nodes[0].address == "10.213.7.11"
    assert a.nodes[-1].address == "10.213.7.254"
    assert a.host_address == "10.213.7.1"
    assert a.subnet == "10.213.7.0/24"
    every_a = {a.bridge, *(n.veth for n in a.nodes), *(n.netns for n in a.nodes)}
    every_b = {b.bridge, *(n.veth for n in b.nodes), *(n.netns for n in b.nodes)}
    assert not every_a & every_b
    # Long node names still give short interface names (veths are named by position).
    long = nx.make_names("abcdef", 1, ["a-very-long-node-name-0123456789"])
    assert len(long.nodes[0].veth) <= nx.IFNAMSIZ


@pytest.mark.parametrize(
    "bad", [[], ["n1", "n1"], ["n/1"], ["-n1"], ["a" * 33], ["n 1"], [f"n{i}" for i in range(245)]]
)
def test_bad_node_names_are_refused(bad: list[str]) -> None:
    with pytest.raises(BackendError):
        nx.validate_node_names(bad)


def test_bad_short_id_and_subnet() -> None:
    with pytest.raises(ValueError):
        nx.make_names("ABCDEF", 1, ["n1"])
    with pytest.raises(ValueError):
        nx.make_names("abcdef", 255, ["n1"])


def _state() -> nx.RunState:
    names = nx.make_names("abc123", 9, ["n1", "n2"])
    st = nx.RunState.for_names("run-1", names)
    st.daemons.append(nx.DaemonRecord(pid=4242, start_time=99, name="etcd", node="n1"))
    return st


def test_state_round_trip(tmp_path: Path) -> None:
    st = _state()
    nx.write_state(tmp_path, st)
    [(path, parsed)] = list(nx.read_states(tmp_path))
    assert path == tmp_path / "abc123.json"
    assert parsed == st
    assert parsed.owner_alive()  # this very process
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "key,value",
    [
        ("version", 99),
        ("short_id", "../etc"),
        ("subnet", "192.168.1.0/24"),
        ("subnet", "10.213.0.0/16"),
        ("bridge", "docker0"),
        ("netns", ["lh-abc123-n1", "someone-elses"]),
        ("veths", ["eth0"]),
        ("forward_rules", [["-i", "docker0", "-j", "ACCEPT"]]),
        ("daemons", [{"pid": 1, "start_time": 1, "name": "x", "node": "n1"}]),
        ("daemons", [{"pid": "x"}]),
        ("owner_pid", "12"),
        ("owner_pid", True),
    ],
)
def test_state_file_with_foreign_names_is_refused(key: str, value: object) -> None:
    data = json.loads(_state().to_json())
    data[key] = value
    with pytest.raises(ValueError):
        nx.RunState.from_json(json.dumps(data))


def test_state_file_missing_key_and_garbage() -> None:
    data = json.loads(_state().to_json())
    del data["netns"]
    with pytest.raises(ValueError, match="netns"):
        nx.RunState.from_json(json.dumps(data))
    with pytest.raises(ValueError):
        nx.RunState.from_json("{not json")
    with pytest.raises(ValueError):
        nx.RunState.from_json("[]")


def test_dead_owner_is_detected() -> None:
    st = _state()
    st.owner_start_time += 1  # same pid, different start time: pid reuse
    assert not st.owner_alive()
    proc = subprocess.Popen([PY, "-c", "pass"])
    proc.wait()
    st.owner_pid = proc.pid
    assert not st.owner_alive()


def test_proc_start_time_of_self_and_missing() -> None:
    assert nx.proc_start_time(os.getpid()) is not None
    assert nx.proc_state(os.getpid()) in ("R", "S")
    assert nx.proc_start_time(2**22 + 1) is None  # above pid_max's maximum


def test_clean_leftovers_on_empty_dir(tmp_path: Path) -> None:
    assert clean_leftovers(tmp_path / "missing") == []
    assert clean_leftovers(tmp_path) == []


def test_registry() -> None:
    assert BACKENDS["local"] is LocalBackend
    with pytest.raises(BackendError, match="unknown backend"):
        create_backend("nope", "r", None)


def test_unavailable_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends import local
    from harness.backends.base import BackendUnavailable

    monkeypatch.setattr(local.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(local, "_effective_caps", lambda: 0)
    with pytest.raises(BackendUnavailable, match=r"needs root or CAP_NET_ADMIN.*--backend docker"):
        create_backend("local", "r")
    # CAP_NET_ADMIN alone is not enough: `ip netns add` mounts (CAP_SYS_ADMIN).
    monkeypatch.setattr(local, "_effective_caps", lambda: 1 << 12)
    with pytest.raises(BackendUnavailable):
        LocalBackend("r")
    monkeypatch.setattr(local, "_effective_caps", lambda: (1 << 12) | (1 << 21))
    LocalBackend("r")  # constructing creates nothing


# ----------------------------------------------------------------------------- helpers

SLEEPER = "import time\nwhile True: time.sleep(0.05)"


def mine_left(short_id: str) -> list[str]:
    """Anything of run `short_id` still present on the host (by its exact name prefix)."""
    left = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += [line for line in ns.splitlines() if f"lh-{short_id}-" in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left += [
        line for line in links.splitlines() if f"lh{short_id}" in line or f"lhb{short_id}" in line
    ]
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    left += [line for line in rules.splitlines() if f"run {short_id}" in line]
    return left


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    b = LocalBackend("test-run", state_dir=tmp_path / "state")
    try:
        yield b
    finally:
        b.teardown()
        if b.short_id:
            assert mine_left(b.short_id) == []
            assert not (tmp_path / "state" / f"{b.short_id}.json").exists()


# ----------------------------------------------------------------------------- integration


@pytest.mark.integration
@needs_root
def test_provision_addresses_and_connectivity(backend: LocalBackend, tmp_path: Path) -> None:
    t0 = time.monotonic()
    nodes = backend.provision(["n1", "n2", "n3"])
    elapsed = time.monotonic() - t0
    print(f"provisioned 3 nodes in {elapsed:.3f}s")
    assert [n.name for n in nodes] == ["n1", "n2", "n3"]
    assert len({n.address for n in nodes}) == 3
    prefix = backend.host_address.rsplit(".", 1)[0]
    assert all(n.address.startswith(prefix + ".") for n in nodes)
    assert nx.guard_route_present()
    # Each namespace has exactly its own address on eth0 and lo up.
    for n in nodes:
        r = backend.run(n, ["ip", "-4", "-o", "addr", "show"])
        assert f"{n.address}/24" in r.stdout and "eth0" in r.stdout
        assert "127.0.0.1" in r.stdout
        route = backend.run(n, ["ip", "route", "show", "default"]).stdout
        assert f"via {backend.host_address} dev eth0" in route

    start_echo(backend, nodes[1], 7001, tmp_path / "echo.log")
    assert tcp(backend, nodes[0], nodes[1].address, 7001)
    assert tcp(backend, nodes[2], nodes[1].address, 7001)
    host = HostEcho(backend.host_address)
    try:
        assert all(tcp(backend, n, backend.host_address, host.port) for n in nodes)
    finally:
        host.close()
    # Nothing beyond the bridge is reachable: a TEST-NET-3 address gets no answer.
    assert not tcp(backend, nodes[0], "203.0.113.1", 80, timeout=0.5)


@pytest.mark.integration
@needs_root
def test_partition_inside_namespace_spares_host(backend: LocalBackend, tmp_path: Path) -> None:
    n1, n2, _ = backend.provision(["n1", "n2", "n3"])
    start_echo(backend, n2, 7002, tmp_path / "echo.log")
    host = HostEcho(backend.host_address)
    try:
        assert tcp(backend, n1, n2.address, 7002)
        r = backend.run(n1, ["iptables", "-w", "-A", "OUTPUT", "-d", n2.address, "-j", "DROP"])
        assert r.returncode == 0, r.stderr
        assert not tcp(backend, n1, n2.address, 7002, timeout=0.5)
        assert tcp(backend, n1, backend.host_address, host.port)
        # The rule lives in n1's namespace only: the host's FORWARD is unchanged by it.
        assert (
            n2.address
            not in subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
        )
        assert backend.run(n1, ["iptables", "-w", "-F", "OUTPUT"]).returncode == 0
        assert tcp(backend, n1, n2.address, 7002)
    finally:
        host.close()


@pytest.mark.integration
@needs_root
def test_run_timeout_names_node_and_command(backend: LocalBackend) -> None:
    (n1,) = backend.provision(["n1"])
    t0 = time.monotonic()
    with pytest.raises(BackendError, match=r"sleep 30.*n1"):
        backend.run(n1, ["sh", "-c", "sleep 30 & sleep 30"], timeout=0.3)
    assert time.monotonic() - t0 < 3
    other = Node(name="n9", address="10.213.0.9", handle="lh-000000-n9")
    with pytest.raises(BackendError, match="n9"):
        backend.run(other, ["true"])


@pytest.mark.integration
@needs_root
def test_daemon_pause_resume_stop(backend: LocalBackend, tmp_path: Path) -> None:
    (n1,) = backend.provision(["n1"])
    log = tmp_path / "logs" / "sleeper.log"
    d = backend.spawn(n1, "sleeper", [PY, "-c", SLEEPER], env={"HARNESS_X": "1"}, log_path=log)
    assert isinstance(d, Daemon)
    time.sleep(0.2)
    # The pid is the daemon itself (ip netns exec execs), in the node's namespace.
    assert Path(f"/proc/{d.pid}/cmdline").read_bytes().split(b"\0")[0] == PY.encode()
    assert os.stat(f"/proc/{d.pid}/ns/net").st_ino == os.stat(f"/run/netns/{n1.handle}").st_ino
    assert b"HARNESS_X=1" in Path(f"/proc/{d.pid}/environ").read_bytes()
    state = json.loads((backend.state_dir / f"{backend.short_id}.json").read_text())
    assert [x["pid"] for x in state["daemons"]] == [d.pid]

    d.signal(signal.SIGSTOP)
    wait_state(d.pid, "T")
    d.signal(signal.SIGCONT)
    wait_state(d.pid, "S", "R")
    d.signal(signal.SIGSTOP)  # stop() must work on a paused daemon
    wait_state(d.pid, "T")
    assert d.poll() is None
    assert d.stop(timeout=2) == -signal.SIGTERM
    assert d.poll() == -signal.SIGTERM
    assert nx.proc_state(d.pid) is None
    state = json.loads((backend.state_dir / f"{backend.short_id}.json").read_text())
    assert state["daemons"] == []
    with pytest.raises(BackendError, match="exited"):
        d.signal(signal.SIGCONT)
    # A daemon that ignores SIGTERM is killed after the timeout.
    stubborn = backend.spawn(
        n1,
        "stubborn",
        [
            PY,
            "-c",
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\nwhile True: time.sleep(0.05)",
        ],
        log_path=log,
    )
    wait_for(lambda: "ready" in log.read_text())
    t0 = time.monotonic()
    assert stubborn.stop(timeout=0.3) == -signal.SIGKILL
    assert time.monotonic() - t0 < 2


def wait_state(pid: int, *states: str) -> None:
    wait_for(lambda: nx.proc_state(pid) in states, f"pid {pid} never in state {states}")


def wait_for(cond: object, msg: str = "condition") -> None:
    deadline = time.monotonic() + 5
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, msg
        time.sleep(0.01)


@pytest.mark.integration
@needs_root
def test_teardown_kills_everything_and_is_idempotent(tmp_path: Path) -> None:
    b = LocalBackend("teardown", state_dir=tmp_path / "state")
    try:
        nodes = b.provision(["n1", "n2", "n3"])
        paused = b.spawn(nodes[0], "paused", [PY, "-c", SLEEPER], log_path=tmp_path / "a.log")
        forked = b.spawn(
            nodes[1],
            "forker",
            ["sh", "-c", f"{PY} -c '{SLEEPER}' & wait"],
            log_path=tmp_path / "b.log",
        )
        time.sleep(0.2)
        paused.signal(signal.SIGSTOP)
        wait_state(paused.pid, "T")
        # Something started by `run` that outlived it (setsid escapes the group): it is
        # in the namespace, so teardown still finds and kills it.
        b.run(nodes[2], ["sh", "-c", f"setsid {PY} -c '{SLEEPER}' >/dev/null 2>&1 &"])
        in_ns = {n.name: nx.netns_pids(n.handle) for n in nodes}
        assert all(in_ns.values()), in_ns
        all_pids = [p for ps in in_ns.values() for p in ps]
        t0 = time.monotonic()
        b.teardown()
        print(f"teardown of 3 nodes with 3 daemons took {time.monotonic() - t0:.3f}s")
        assert paused.poll() is not None and forked.poll() is not None
        assert all(nx.proc_state(p) in (None, "Z") for p in all_pids)
        assert mine_left(b.short_id) == []
        assert not (tmp_path / "state" / f"{b.short_id}.json").exists()
        b.teardown()  # again: no error
        with pytest.raises(BackendError):
            b.spawn(nodes[0], "late", ["true"], log_path=tmp_path / "c.log")
    finally:
        b.teardown()


@pytest.mark.integration
@needs_root
def test_failed_provisioning_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = LocalBackend("halfway", state_dir=tmp_path / "state")
    real = LocalBackend._create_node
    calls = []

    def fail_on_second(self: LocalBackend, n: nx.NodeNames, *args: object) -> None:
        calls.append(n.node)
        if len(calls) == 2:
            # Half of node 2 exists when it fails: its namespace but no veth.
            nx.sh(["ip", "netns", "add", n.netns])
            raise BackendError("injected failure")
        real(self, n, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalBackend, "_create_node", fail_on_second)
    try:
        with pytest.raises(BackendError, match="injected failure"):
            b.provision(["n1", "n2", "n3"])
        assert b.short_id
        assert mine_left(b.short_id) == []
        assert not (tmp_path / "state" / f"{b.short_id}.json").exists()
    finally:
        b.teardown()


@pytest.mark.integration
@needs_root
def test_two_backends_do_not_collide(tmp_path: Path) -> None:
    a = LocalBackend("same-run-id", state_dir=tmp_path / "state")
    b = LocalBackend("same-run-id", state_dir=tmp_path / "state")
    try:
        na = a.provision(["n1", "n2"])
        nb = b.provision(["n1", "n2"])
        assert a.short_id != b.short_id
        assert a.host_address != b.host_address
        assert not {n.handle for n in na} & {n.handle for n in nb}
        assert not {n.address for n in na} & {n.address for n in nb}
        start_echo(a, na[1], 7003, tmp_path / "a.log")
        start_echo(b, nb[1], 7003, tmp_path / "b.log")
        assert tcp(a, na[0], na[1].address, 7003)
        assert tcp(b, nb[0], nb[1].address, 7003)
        # Runs are isolated from each other, although the host routes both /24s.
        assert not tcp(a, na[0], nb[1].address, 7003, timeout=0.5)
        a.teardown()
        assert mine_left(a.short_id) == []
        assert tcp(b, nb[0], nb[1].address, 7003)  # b unaffected by a's teardown
        assert nx.guard_route_present()
    finally:
        a.teardown()
        b.teardown()
    assert mine_left(b.short_id) == []


OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.backends.local import LocalBackend
    b = LocalBackend("crashing", state_dir=sys.argv[1])
    nodes = b.provision(["n1", "n2"])
    d = b.spawn(nodes[0], "sleeper", [sys.executable, "-c", sys.argv[2]],
                log_path=Path(sys.argv[1]) / "d.log")
    print(b.short_id, d.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.integration
@needs_root
def test_clean_leftovers_after_owner_killed(backend: LocalBackend, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    backend.provision(["n1"])  # a live run in the same directory: must be left alone
    owner = subprocess.Popen(
        [PY, "-c", OWNER, str(state_dir), SLEEPER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    short_id = ""
    try:
        assert owner.stdout is not None
        short_id, pid_text = owner.stdout.readline().split()
        daemon_pid = int(pid_text)
        assert nx.proc_state(daemon_pid) not in (None, "Z")
        # Nothing to clean while the owner lives.
        assert clean_leftovers(state_dir) == []
        owner.kill()
        owner.wait()
        assert mine_left(short_id), "the crashed run should have left things behind"
        removed = clean_leftovers(state_dir)
        print("\n".join(removed))
        text = "\n".join(removed)
        assert f"killed daemon sleeper on n1 (pid {daemon_pid})" in text
        assert f"deleted netns lh-{short_id}-n1" in text
        assert f"deleted bridge lhb{short_id}" in text
        assert "FORWARD rule" in text
        assert mine_left(short_id) == []
        assert nx.proc_state(daemon_pid) in (None, "Z")
        assert not (state_dir / f"{short_id}.json").exists()
        # The live run is untouched and still works.
        assert (state_dir / f"{backend.short_id}.json").exists()
        assert mine_left(backend.short_id)
        assert clean_leftovers(state_dir) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        clean_leftovers(state_dir)
        if short_id:
            assert mine_left(short_id) == []


@pytest.mark.integration
@needs_root
def test_clean_leftovers_spares_reused_daemon_pid(backend: LocalBackend, tmp_path: Path) -> None:
    """A recorded daemon pid now owned by another process (start time differs) survives."""
    (n1,) = backend.provision(["n1"])
    bystander = subprocess.Popen([PY, "-c", SLEEPER])
    try:
        start = nx.proc_start_time(bystander.pid)
        assert start is not None
        state_file = backend.state_dir / f"{backend.short_id}.json"
        st = nx.RunState.from_json(state_file.read_text())
        st.daemons.append(nx.DaemonRecord(bystander.pid, start + 1, "old", "n1"))
        dead = subprocess.Popen([PY, "-c", "pass"])
        dead.wait()
        st.owner_pid = dead.pid  # the owner "died"
        nx.write_state(backend.state_dir, st)
        removed = clean_leftovers(backend.state_dir)
        assert any(f"deleted netns {n1.handle}" in r for r in removed)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.integration
@needs_root
def test_clean_leftovers_removes_unrecorded_objects(backend: LocalBackend, tmp_path: Path) -> None:
    """Objects named like a run's but recorded by no state file on the host (a run killed
    between creating and recording) are removed; a live run in another state directory
    is not."""
    (live,) = backend.provision(["n1"])  # recorded in tmp_path/state
    sid = "0badc0"
    assert mine_left(sid) == []
    comment = ["-m", "comment", "--comment", f"{nx.COMMENT_PREFIX}{sid}"]
    rule = ["-i", f"lhb{sid}", "-o", f"lhb{sid}", *comment, "-j", "ACCEPT"]
    nx.sh(["ip", "netns", "add", f"lh-{sid}-n1"])
    nx.sh(["ip", "netns", "add", f"lh-{sid}-n2"])
    nx.sh(["ip", "link", "add", f"lhb{sid}", "type", "bridge"])
    nx.sh(["ip", "link", "add", f"lh{sid}n1", "type", "veth", "peer", "name", "eth0",
           "netns", f"lh-{sid}-n1"])  # fmt: skip
    nx.sh(["iptables", "-w", "-I", "FORWARD", *rule])
    try:
        removed = "\n".join(clean_leftovers(tmp_path / "other-state"))
        assert f"deleted netns lh-{sid}-n1 (unrecorded)" in removed
        assert f"deleted netns lh-{sid}-n2 (unrecorded)" in removed
        assert f"deleted veth lh{sid}n1 (unrecorded)" in removed
        assert f"deleted bridge lhb{sid} (unrecorded)" in removed
        assert f"deleted FORWARD rule {' '.join(rule)} (unrecorded)" in removed
        assert mine_left(sid) == []
        assert backend.short_id not in removed
        assert mine_left(backend.short_id), "the live run's objects must stay"
        assert nx.netns_exists(str(live.handle))
    finally:
        for ns in (f"lh-{sid}-n1", f"lh-{sid}-n2"):
            nx.sh(["ip", "netns", "del", ns], check=False)
        nx.sh(["ip", "link", "del", f"lhb{sid}"], check=False)
        nx.sh(["iptables", "-w", "-D", "FORWARD", *rule], check=False)
