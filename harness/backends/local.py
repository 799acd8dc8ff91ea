"""The `local` backend: one Linux network namespace per node on this machine.

A run gets a bridge `lhb<id>` holding the harness's host address 10.213.X.1/24 and, per
node, a namespace `lh-<id>-<node>` whose `eth0` (the peer of host-side veth
`lh<id>n<i>`) has 10.213.X.(10+i)/24 and a default route via the host address. Commands
and daemons run in a node's namespace through `ip netns exec`, which execs the command,
so a daemon's pid is the process that SIGSTOP/SIGCONT/SIGKILL should reach.

Safety: the whole 10.213.0.0/16 is `unreachable` on the host before any packet is sent,
the bridge has its address before any node is attached, and a FORWARD DROP keeps nodes
from being routed anywhere but their own bridge. Everything the run creates is recorded
by exact name in a state file before it is created; `teardown` and, after a crash,
`clean_leftovers` remove exactly what is recorded and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends import netns as nx
from harness.backends.base import (
    BackendError,
    BackendUnavailable,
    Node,
    RunResult,
    SameHost,
    undone_on_failure,
)
from harness.safefile import open_append
from harness.wait import WaitTimeout, wait_until

if TYPE_CHECKING:
    from harness.image.servers import ServerPackage

log = logging.getLogger(__name__)

_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21  # `ip netns add` bind-mounts the namespace under /run/netns
_UNAVAILABLE = (
    "the local backend needs root or CAP_NET_ADMIN to create network namespaces; "
    "run as root or use --backend docker"
)


def check_available() -> None:
    """Raise BackendUnavailable unless this process can create namespaces and bridges."""
    if os.geteuid() != 0:
        needed = (1 << _CAP_NET_ADMIN) | (1 << _CAP_SYS_ADMIN)
        if _effective_caps() & needed != needed:
            raise BackendUnavailable(_UNAVAILABLE)
    for tool in ("ip", "iptables"):
        if not any(Path(d, tool).exists() for d in [*os.get_exec_path(), "/usr/sbin", "/sbin"]):
            raise BackendUnavailable(f"the local backend needs `{tool}` (iproute2/iptables)")


def _effective_caps() -> int:
    """The CapEff bit mask of this process (0 if unreadable)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


class LocalDaemon:
    """A process started in a node's namespace; its pid is the daemon itself."""

    def __init__(
        self, backend: LocalBackend, node: Node, name: str, popen: subprocess.Popen[bytes]
    ):
        self.name = name
        self.node = node
        self._backend = backend
        self._popen = popen
        self._start_time = nx.proc_start_time(popen.pid)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def start_time(self) -> int | None:
        return self._start_time

    def signal(self, signum: int) -> None:
        """Send `signum` to the daemon's own pid (not its group: a pause is precise)."""
        if self._popen.returncode is not None:
            raise BackendError(
                f"daemon {self.name} on {self.node.name} (pid {self.pid}) has already "
                f"exited with status {self._popen.returncode}"
            )
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError as exc:  # pragma: no cover - unreaped pids always exist
            raise BackendError(f"daemon {self.name} on {self.node.name}: {exc}") from exc

    def poll(self) -> int | None:
        status = self._popen.poll()
        if status is not None:
            self._backend._forget(self)
        return status

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGCONT (it may be paused), SIGTERM, then SIGKILL the group after `timeout`.

        The daemon's session/process group is killed too, so helpers it started do not
        outlive it. The group is signalled only while the leader is unreaped (alive or a
        zombie), which keeps the group id from being reused by an unrelated process.
        """
        if self._popen.returncode is None:
            self._killpg(signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if not self._wait_exited(timeout):
                log.info("daemon %s on %s ignored SIGTERM; killing", self.name, self.node.name)
            self._killpg(signal.SIGKILL)
        status = self._popen.wait()
        self._backend._forget(self)
        return status

    def kill(self) -> int | None:
        """SIGCONT + SIGKILL to the whole group and reap: what teardown does."""
        if self._popen.returncode is None:
            self._killpg(signal.SIGCONT)
            self._killpg(signal.SIGKILL)
        try:
            status: int | None = self._popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            status = None
        self._backend._forget(self)
        return status

    def _killpg(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)  # start_new_session: pgid == pid

    def _wait_exited(self, timeout: float) -> bool:
        """Wait until the daemon has exited, without reaping it (WNOWAIT)."""

        def exited() -> bool:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True  # already reaped elsewhere
            return info is not None

        try:
            return wait_until(exited, timeout, f"daemon {self.name} to exit")
        except WaitTimeout:
            return False

    def __repr__(self) -> str:
        return f"LocalDaemon({self.name!r}, node={self.node.name!r}, pid={self.pid})"


class LocalBackend(SameHost):
    """Nodes as network namespaces on this machine, joined by a bridge of their own.

    `host_address` is "" until `provision` has chosen the run's /24.
    """

    name = "local"
    # Namespaces on this machine: its clock and files; server trees unpacked on the host.
    offers: frozenset[str] = frozenset({"shared-clock", "shared-files", "server-trees"})
    # Nodes share this machine's file system, so they run the harness's own interpreter.
    python = sys.executable

    def __init__(self, run_id: str, state_dir: Path | str | None = None) -> None:
        check_available()
        self.run_id = run_id
        self.state_dir = Path(state_dir) if state_dir is not None else nx.DEFAULT_STATE_DIR
        self.host_address = ""
        self.short_id = ""
        self.nodes: list[Node] = []
        self._names: nx.RunNames | None = None
        self._state: nx.RunState | None = None
        self._daemons: dict[int, LocalDaemon] = {}
        self._lock = threading.RLock()
        self._torn_down = False

    # ------------------------------------------------------------------ provisioning

    def provision(self, names: Sequence[str], shared_dir: Path | None = None) -> list[Node]:
        del shared_dir  # namespaces share this machine's file system
        with self._lock:
            if self._state is not None or self._torn_down:
                raise BackendError("local backend: provision may be called once per backend")
            nx.validate_node_names(names)
            # Half-built runs are undone by the recorded names (after the lock is released),
            # and the original error is what the caller sees. The lock is held through
            # creation, not just allocation: a concurrent teardown that decides whether the
            # guard route is still needed must see either no trace of this run or its
            # state file and bridge address.
            with undone_on_failure("local", self.teardown), nx.host_lock():
                self._allocate(names)
                self._create()
            return list(self.nodes)

    def _allocate(self, node_names: Sequence[str]) -> None:
        """Choose a free short id and /24, and record every name before creating any.

        Call with `nx.host_lock` held.
        """
        nx.ensure_guard_route()
        used = nx.used_subnet_indexes(self.state_dir)
        free = [x for x in range(1, 255) if x not in used]
        if not free:
            raise BackendError("local backend: no free /24 left in 10.213.0.0/16")
        existing_ns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        # Derived from the run id so people can match names to runs; random if taken.
        candidates = [hashlib.sha256(self.run_id.encode()).hexdigest()[:6]]
        candidates += [secrets.token_hex(3) for _ in range(32)]
        for sid in candidates:
            names = nx.make_names(sid, free[0], node_names)
            taken = (
                nx.state_path(self.state_dir, sid).exists()
                or nx.link_exists(names.bridge)
                or any(nx.link_exists(n.veth) for n in names.nodes)
                or any(ns.startswith(f"lh-{sid}-") for ns in existing_ns)
            )
            if not taken:
                break
        else:  # pragma: no cover - 33 collisions of 24-bit ids
            raise BackendError("local backend: could not find a free run id")
        self._names = names
        self.short_id = sid
        self._state = nx.RunState.for_names(self.run_id, names)
        nx.register_state_dir(self.state_dir)
        nx.write_state(self.state_dir, self._state)

    def _create(self) -> None:
        names = self._names
        assert names is not None
        prefix = names.subnet.split("/")[1]
        # The bridge holds the host address and is up before any node exists: from the
        # first packet on, the /24 is routed to the bridge (and the rest of the /16 is
        # unreachable), never out of the default route.
        nx.sh(["ip", "link", "add", names.bridge, "type", "bridge"])
        _disable_ipv6(names.bridge)
        nx.sh(["ip", "addr", "add", f"{names.host_address}/{prefix}", "dev", names.bridge])
        nx.sh(["ip", "link", "set", names.bridge, "up"])
        for rule in names.forward_rules():
            nx.sh(["iptables", "-w", "-I", "FORWARD", *rule])
        for n in names.nodes:
            self._create_node(n, names, prefix)
        self.host_address = names.host_address
        self.nodes = [Node(name=n.node, address=n.address, handle=n.netns) for n in names.nodes]

    def _create_node(self, n: nx.NodeNames, names: nx.RunNames, prefix: str) -> None:
        nx.sh(["ip", "netns", "add", n.netns])
        # The peer is created directly inside the namespace as eth0, so no temporary name
        # ever exists on the host where it could collide with another run.
        nx.sh(
            ["ip", "link", "add", n.veth, "type", "veth", "peer", "name", "eth0", "netns", n.netns]
        )
        _disable_ipv6(n.veth)
        nx.sh(["ip", "link", "set", n.veth, "master", names.bridge, "up"])
        ns = ["ip", "-n", n.netns]
        nx.sh([*ns, "addr", "add", f"{n.address}/{prefix}", "dev", "eth0"])
        nx.sh([*ns, "link", "set", "lo", "up"])
        nx.sh([*ns, "link", "set", "eth0", "up"])
        nx.sh([*ns, "route", "add", "default", "via", names.host_address])

    def server_root(self, package: ServerPackage) -> str:
        """Namespaces share this machine's files: the package is unpacked on the host
        (fetched from Debian's archive on first use, then cached). A package that needs
        its dependencies installed would change the host itself: refused."""
        from harness.image.servers import ensure_servers

        if package.resolve_deps:
            raise BackendError(
                f"local backend: {package.name} needs its Debian dependencies installed, "
                "which this backend does not do on the host (use the docker backend)"
            )
        return str(ensure_servers(packages=[package])[package.name])

    # ------------------------------------------------------------------ commands

    def _netns(self, node: Node) -> str:
        for n in self.nodes:
            if n.name == node.name and n.handle == node.handle:
                return n.handle
        raise BackendError(f"local backend: node {node.name!r} is not part of run {self.short_id}")

    def run(self, node: Node, argv: Sequence[str], timeout: float = 10.0) -> RunResult:
        """Run `argv` in the node's namespace and return its status and output."""
        ns = self._netns(node)
        # Own session, so a timeout kills everything the command started; otherwise a
        # grandchild holding the pipes would block the read forever.
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5.0)
            raise BackendError(
                f"local backend: `{' '.join(argv)}` on node {node.name} timed out after {timeout}s"
            ) from exc
        return RunResult(
            proc.returncode,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
        )

    def spawn(
        self,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> LocalDaemon:
        """Start `argv` in the node's namespace; output is appended to `log_path`.

        `env` is added to the harness's own environment (PATH and friends stay).
        """
        with self._lock:
            if self._torn_down:
                raise BackendError("local backend: spawn after teardown")
            ns = self._netns(node)
            full_env = dict(os.environ)
            if env:
                full_env.update(env)
            log_path = Path(log_path)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            # The one way the harness opens a run directory's files: never through a link.
            with os.fdopen(open_append(log_path), "ab") as logf:
                popen = subprocess.Popen(
                    ["ip", "netns", "exec", ns, *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    start_new_session=True,
                )
            daemon = LocalDaemon(self, node, name, popen)
            self._daemons[daemon.pid] = daemon
            if daemon.start_time is not None and self._state is not None:
                self._state.daemons.append(
                    nx.DaemonRecord(daemon.pid, daemon.start_time, name, node.name)
                )
                nx.write_state(self.state_dir, self._state)
            return daemon

    def _forget(self, daemon: LocalDaemon) -> None:
        """A daemon has been reaped: drop it from the tracked set and the state file."""
        with self._lock:
            if self._daemons.pop(daemon.pid, None) is None:
                return
            if self._state is not None and not self._torn_down:
                self._state.daemons = [d for d in self._state.daemons if d.pid != daemon.pid]
                with contextlib.suppress(OSError):
                    nx.write_state(self.state_dir, self._state)

    # ------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        """Kill every daemon and remove every recorded object; safe to call again.

        If something cannot be removed, the state file stays (listing it) and
        BackendError says what: a later call, or `clean_leftovers`, can retry.
        """
        with self._lock:
            if self._torn_down:
                return
            for daemon in list(self._daemons.values()):
                daemon.kill()
            if self._state is None:
                self._torn_down = True
                return
            _, errors = nx.remove_recorded(self._state, skip_daemons=True)
            if errors:
                raise BackendError(
                    f"local backend: teardown of run {self.short_id} left: " + "; ".join(errors)
                )
            with nx.host_lock():
                nx.state_path(self.state_dir, self.short_id).unlink(missing_ok=True)
                nx.maybe_remove_guard_route(self.state_dir)
            self._torn_down = True

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def _disable_ipv6(ifname: str) -> None:
    """No IPv6 on the host-side interfaces: the test network is IPv4 10.213/16 only."""
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1")


def clean_leftovers(state_dir: Path | str = nx.DEFAULT_STATE_DIR) -> list[str]:
    """Remove what crashed runs left behind; returns one line per thing removed.

    Only runs whose owner process is gone (pid and start time no longer match) are
    touched, and only the exact names and processes their state files record; then
    objects named like this backend's that no state file on this host records (a run
    killed between creating and recording, see `netns.orphan_states`).
    """
    state_dir = Path(state_dir)
    if not nx.STATE_DIRS_PATH.exists() and not any(state_dir.glob("*.json")):
        return []  # no run has used this host's namespaces since boot
    removed: list[str] = []
    with nx.host_lock():
        for path, state in nx.read_states(state_dir):
            if isinstance(state, ValueError):
                log.warning("ignoring unreadable state file %s: %s", path, state)
                continue
            if state.owner_alive():
                continue
            done, errors = nx.remove_recorded(state)
            removed += done
            if errors:
                log.warning("leftovers of run %s not fully removed: %s", state.short_id, errors)
                continue
            path.unlink(missing_ok=True)
            removed.append(f"run {state.short_id}: removed state file {path}")
        for orphan in nx.orphan_states(state_dir):
            done, errors = nx.remove_recorded(orphan)
            removed += [f"{line} (unrecorded)" for line in done]
            if errors:
                log.warning("unrecorded objects of run %s not removed: %s", orphan.short_id, errors)
        guard = nx.maybe_remove_guard_route(state_dir)
        if guard:
            removed.append(guard)
    return removed
