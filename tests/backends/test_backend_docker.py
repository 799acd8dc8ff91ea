"""The docker backend against the real Docker daemon and the node image.

Each test provisions containers on a network of its own and tears it down in a fixture,
then checks by label that nothing of its run is left. Skipped only when no Docker
daemon answers; the node image is built (cached) on first use.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from harness.backends import create_backend
from harness.backends import docker as dk
from harness.backends.base import BackendError
from harness.backends.docker import LABEL_RUN, DockerBackend, clean_leftovers
from tests.netcheck import HostEcho, start_echo, tcp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not dk.daemon_answers(), reason="no Docker daemon answers"),
]


def leftovers(run_id: str) -> list[str]:
    client = docker.from_env()
    try:
        filters = {"label": [f"{LABEL_RUN}={run_id}"]}
        return [c.name for c in client.containers.list(all=True, filters=filters)] + [
            n.name for n in client.networks.list(filters=filters)
        ]
    finally:
        client.close()


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """A run directory as the harness makes one (mode 0755): pytest's own tmp_path is
    0700, which the nodes' unprivileged daemons could not enter."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o755)
    return run_dir


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[DockerBackend]:
    run_id = f"test-{os.getpid()}-{time.monotonic_ns()}"
    b = create_backend("docker", run_id)
    assert isinstance(b, DockerBackend)
    try:
        yield b
    finally:
        b.teardown()
        assert leftovers(run_id) == []


def test_nodes_are_containers_with_only_net_admin(backend: DockerBackend, tmp_path: Path) -> None:
    nodes = backend.provision(["n1", "n2", "n3"], shared_dir=tmp_path)
    assert [n.name for n in nodes] == ["n1", "n2", "n3"]
    client = docker.from_env()
    try:
        for node in nodes:
            c = client.containers.get(node.handle)
            host = c.attrs["HostConfig"]
            assert host["Privileged"] is False
            assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["ALL"]
            assert c.labels[LABEL_RUN] == backend.run_id
            assert c.attrs["Config"]["Hostname"] == node.name
        network = client.networks.get(f"lh-{backend.short_id}")
        assert network.attrs["Internal"] is True
        assert network.attrs["IPAM"]["Config"][0]["Gateway"] == backend.host_address
    finally:
        client.close()
    assert backend.host_address.startswith("10.213.") and backend.host_address.endswith(".1")
    # The run directory is the same path on the host and in every node.
    (tmp_path / "from-host").write_text("hello")
    r = backend.run(nodes[1], ["cat", str(tmp_path / "from-host")])
    assert (r.returncode, r.stdout) == (0, "hello")
    # A node writes only where nodes write (its own nodes/<node>/, logs/, history/): the
    # rest of the run directory is read-only inside the containers.
    mine = tmp_path / "nodes" / "n3"
    r = backend.run(nodes[2], ["sh", "-c", f"echo hi > {mine}/from-n3; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "", "err\n")
    assert (mine / "from-n3").read_text() == "hi\n"
    r = backend.run(nodes[2], ["sh", "-c", f"echo hi > {tmp_path}/from-n3"])
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert not (tmp_path / "from-n3").exists()


def test_run_times_out_inside_the_node(backend: DockerBackend, tmp_path: Path) -> None:
    (n1,) = backend.provision(["n1"], shared_dir=tmp_path)
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="timed out after 1"):
        backend.run(n1, ["sleep", "31"], timeout=1)
    assert time.monotonic() - t0 < 10
    r = backend.run(n1, ["ps", "-eo", "args"])
    assert "sleep infinity" in r.stdout  # the container's own
    assert "sleep 31" not in r.stdout.splitlines()


def test_nodes_reach_each_other_and_the_host_and_iptables_cuts_them(
    backend: DockerBackend, tmp_path: Path
) -> None:
    n1, n2 = backend.provision(["n1", "n2"], shared_dir=tmp_path)
    start_echo(backend, n2, 7001, tmp_path / "logs" / "echo.log")
    host = HostEcho(backend.host_address)
    try:
        assert tcp(backend, n1, n2.address, 7001)
        assert tcp(backend, n1, backend.host_address, host.port)
        r = backend.run(n1, ["iptables", "-w", "-A", "OUTPUT", "-d", n2.address, "-j", "DROP"])
        assert r.returncode == 0, r.stderr
        assert not tcp(backend, n1, n2.address, 7001, timeout=0.5)
        assert tcp(backend, n1, backend.host_address, host.port)
    finally:
        host.close()


TICKER = "import os, time\nwhile True: print(os.environ['X'], flush=True); time.sleep(0.05)"


def test_daemons_log_pause_and_stop(backend: DockerBackend, tmp_path: Path) -> None:
    (n1,) = backend.provision(["n1"], shared_dir=tmp_path)
    log = tmp_path / "logs" / "d.log"
    d = backend.spawn(
        n1,
        "ticker",
        [backend.python, "-u", "-c", TICKER],
        env={"X": "tick"},
        log_path=log,
    )  # fmt: skip
    deadline = time.monotonic() + 5
    while "tick" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "daemon wrote nothing"
        time.sleep(0.05)
    assert d.poll() is None
    d.signal(signal.SIGSTOP)
    time.sleep(0.2)
    assert Path(f"/proc/{d.pid}/stat").read_text().split()[2] == "T"
    size = log.stat().st_size
    time.sleep(0.3)
    assert log.stat().st_size == size  # frozen: nothing more written
    d.signal(signal.SIGCONT)
    # Docker reports an exec ended by a signal as 128 + the signal (a shell's convention).
    assert d.stop(timeout=2.0) == 128 + signal.SIGTERM  # SIGTERM ended it, not a SIGKILL
    assert d.poll() == 128 + signal.SIGTERM
    with pytest.raises(BackendError, match="already exited"):
        d.signal(signal.SIGKILL)


def test_leftovers_of_a_dead_owner_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = DockerBackend(f"test-dead-{os.getpid()}-{time.monotonic_ns()}")
    live = DockerBackend(f"test-live-{os.getpid()}-{time.monotonic_ns()}")
    try:
        # The owner label of a process that has exited (pid 1's start time never matches).
        dead._owner = f"{os.uname().nodename}:1:1"
        dead.provision(["n1", "n2"], shared_dir=tmp_path)
        live.provision(["n1"], shared_dir=tmp_path)
        removed = clean_leftovers()
        assert any(dead.run_id in line and "container" in line for line in removed)
        assert any(dead.run_id in line and "network" in line for line in removed)
        assert leftovers(dead.run_id) == []
        assert len(leftovers(live.run_id)) == 2  # a container and its network
        assert not any(live.run_id in line for line in removed)
    finally:
        for b in (dead, live):
            b.teardown()
    assert leftovers(live.run_id) == []


def test_unknown_node_is_refused(backend: DockerBackend, tmp_path: Path) -> None:
    (n1,) = backend.provision(["n1"], shared_dir=tmp_path)
    stranger = type(n1)("n9", "10.213.9.9", "0123abcd")
    with pytest.raises(BackendError, match="not part of run"):
        backend.run(stranger, ["true"])
