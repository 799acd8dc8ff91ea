"""The `docker` backend: one container per node on a Docker network of the run's own.

A run gets an internal bridge network `lh-<id>` on a free 10.213.X.0/24 (the bridge, which
Docker gives the gateway address 10.213.X.1 before any container exists, is the harness's
host address) and, per node, a container `lh-<id>-<node>` from the node image, with only
CAP_NET_ADMIN (iptables for partitions), never privileged. The run directory is bind-mounted
read-only at its own path, and only what nodes write is mounted read-write on top of it:
`logs/`, `history/` and the node's own `nodes/<node>/`. So a node can never plant a link
where the host writes (results.json, history.jsonl, report.html).

Daemons (members, candidates) run as an unprivileged user (NODE_USER); the directories
they write (`logs/`, `history/`, the data directories in `nodes/<node>/`) are handed to
that user, without following links, just before each start. `nodes/<node>/` itself stays
root's: the clock control files there are written by the harness and only read by nodes.
Only `docker exec` commands from the harness (iptables, `ss -K`, clock files) run as the
container's root, because iptables needs CAP_NET_ADMIN, which an unprivileged user in a
container cannot hold.

Commands run through `docker exec`; daemons are detached execs whose output goes to their
log file in the run directory. Signals (pause, kill) go to a daemon's host pid, as
`docker kill` does, after docker confirms the exec is still running.

Everything is labelled with the run id and its owner (host, pid, process start time), so a
later run finds what a crashed one left behind and removes exactly that
(`clean_leftovers`). The network is `internal`: nodes reach each other and the host, and
nothing else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker

from harness.backends import netns as nx
from harness.backends.base import (
    BackendError,
    BackendUnavailable,
    Node,
    RunResult,
    SameHost,
    undone_on_failure,
)
from harness.wait import WaitTimeout, wait_until

if TYPE_CHECKING:
    from harness.image.servers import ServerPackage

log = logging.getLogger(__name__)

LABEL_RUN = "org.leader-harness.run"
LABEL_OWNER = "org.leader-harness.owner"
LABEL_NODE = "org.leader-harness.node"
# Imported images carry no environment of their own.
NODE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
# nobody:nogroup: the image's unprivileged user, and on the host an id that owns nothing.
NODE_UID = NODE_GID = 65534
NODE_USER = f"{NODE_UID}:{NODE_GID}"
NODE_WRITABLE = ("logs", "history")  # plus nodes/<node>/, per node
PING_TIMEOUT_S = 3.0
_TIMED_OUT = 137  # `timeout -s KILL` exit status
NETWORK_REMOVE_TRIES = 25


def docker_client(timeout: float = 60.0) -> Any:
    """A docker-py client for the local daemon, or BackendUnavailable saying why not."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise BackendUnavailable(
            "the docker backend needs docker-py (`pip install docker`)"
        ) from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        raise BackendUnavailable(f"no Docker daemon answers ({exc})") from exc
    return client


def daemon_answers() -> bool:
    """Whether a Docker daemon answers now (used to choose the default backend)."""
    try:
        docker_client(timeout=PING_TIMEOUT_S).close()
    except BackendUnavailable:
        return False
    return True


def _pid_namespace() -> str:
    """This process's PID namespace (the inode of /proc/self/ns/pid), "" if unknown."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _owner_label() -> str:
    """host:pid:starttime:pidns:bootid. A pid and its start time name a process only
    within one PID namespace and one boot: two harnesses in different containers (a CI
    job sharing the Docker socket) can have the same host name, pid and start time."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{nx.proc_start_time(pid)}:{_pid_namespace()}:{_boot_id()}"


def _owner_alive(label: str) -> bool:
    """Whether the harness that owns a run may still be running: False only when this
    process can tell for sure that it is gone (same host, PID namespace and boot, and no
    process with that pid and start time). A label that cannot be read (an older format,
    a non-numeric field, another host's or namespace's harness) is foreign: kept."""
    fields = label.split(":")
    if len(fields) not in (3, 5) or fields[0] != socket.gethostname():
        return True
    if len(fields) == 5:
        pidns, boot = fields[3], fields[4]
        if not pidns or pidns != _pid_namespace() or not boot or boot != _boot_id():
            return True  # its pids are not ours to look up
    # else: a label of an older harness (host:pid:start): judged as before, if readable
    pid_text, start_text = fields[1], fields[2]
    if not (pid_text.isascii() and pid_text.isdigit()):
        return True
    if not (start_text.isascii() and start_text.isdigit()):
        return True
    return nx.same_process(int(pid_text), int(start_text))


class DockerDaemon:
    """A detached `docker exec` on a node: `pid` is its host pid."""

    def __init__(
        self, backend: DockerBackend, node: Node, name: str, exec_id: str, pid: int
    ) -> None:
        self.name = name
        self.node = node
        self._backend = backend
        self._exec_id = exec_id
        self._pid = pid
        self._status: int | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def poll(self) -> int | None:
        if self._status is not None:
            return self._status
        try:
            info = self._backend.api().exec_inspect(self._exec_id)
        except Exception as exc:  # the container is gone: so is the process
            log.debug("exec_inspect %s: %s", self._exec_id, exc)
            self._status = -9
            return self._status
        if info.get("Running"):
            return None
        code = info.get("ExitCode")
        self._status = int(code) if code is not None else -1
        return self._status

    def signal(self, signum: int) -> None:
        # pid 0 (an exec that ended before docker showed its pid) would be our own group.
        if self.poll() is not None or self._pid <= 0:
            raise BackendError(
                f"daemon {self.name} on {self.node.name} (pid {self.pid}) has already "
                f"exited with status {self._status}"
            )
        try:
            os.kill(self._pid, signum)
        except ProcessLookupError as exc:
            raise BackendError(f"daemon {self.name} on {self.node.name}: {exc}") from exc

    def _wait(self, timeout: float) -> int | None:
        """The exit status once the daemon has ended, None if it still runs after `timeout`."""
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: self.poll() is not None,
                timeout,
                f"daemon {self.name} on {self.node.name} to exit",
                interval=0.02,
            )
        return self.poll()

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGCONT (it may be paused), SIGTERM, then SIGKILL after `timeout`."""
        if self.poll() is None and self._pid > 0:
            for signum in (signal.SIGCONT, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signum)
            if self._wait(timeout) is None:
                log.info("daemon %s on %s ignored SIGTERM; killing", self.name, self.node.name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
                self._wait(5.0)
        return self._status

    def __repr__(self) -> str:
        return f"DockerDaemon({self.name!r}, node={self.node.name!r}, pid={self.pid})"


class DockerBackend(SameHost):
    """Nodes as containers on a Docker network of the run's own.

    `image` defaults to the run's own image (`harness.image.build.ensure_run_image`): the
    node image plus a layer with the target's `servers` and one with the program's
    `requirements`, each built on first use and cached by the hash of its inputs;
    `progress` receives one line per image build step.
    """

    name = "docker"
    # Containers share the host's kernel clock and bind-mount the run directory; the
    # run image carries server trees and packages installed with their dependencies.
    offers: frozenset[str] = frozenset(
        {"shared-clock", "shared-files", "server-trees", "server-deps"}
    )

    def __init__(
        self,
        run_id: str,
        state_dir: Path | str | None = None,
        *,
        image: str | None = None,
        progress: Callable[[str], None] | None = None,
        servers: Sequence[ServerPackage] = (),
        requirements: Sequence[str] = (),
    ) -> None:
        del state_dir  # labels on the daemon's objects are this backend's state
        from harness.image.build import IMAGE_PYTHON

        self._client = docker_client()
        self.python = IMAGE_PYTHON
        self.run_id = run_id
        self.host_address = ""
        self.short_id = ""
        self.nodes: list[Node] = []
        self.image = image
        self.servers = tuple(servers)
        self.requirements = tuple(requirements)
        self._progress = progress
        self._owner = _owner_label()
        self._containers: dict[str, str] = {}  # node name -> container id
        self._local = threading.local()
        self._lock = threading.RLock()
        self._provisioned = False
        self._torn_down = False
        self._shared: Path | None = None

    def api(self) -> Any:
        """A low-level docker API client for the calling thread (requests sessions are not
        meant to be shared between threads)."""
        api = getattr(self._local, "api", None)
        if api is None:
            api = docker.from_env(timeout=60).api
            self._local.api = api
        return api

    def _labels(self, **extra: str) -> dict[str, str]:
        return {LABEL_RUN: self.run_id, LABEL_OWNER: self._owner, **extra}

    # ------------------------------------------------------------------ provisioning

    def provision(self, names: Sequence[str], shared_dir: Path | None = None) -> list[Node]:
        with self._lock:
            if self._provisioned or self._torn_down:
                raise BackendError("docker backend: provision may be called once per backend")
            self._provisioned = True
            nx.validate_node_names(names)
            with undone_on_failure("docker", self.teardown):
                if self.image is None:
                    from harness.image.build import ensure_run_image

                    self.image = ensure_run_image(self.servers, self.requirements, self._progress)
                with nx.host_lock():
                    self._create_network()
                self._create_containers(names, shared_dir)
            return list(self.nodes)

    def _create_network(self) -> None:
        """Choose a free /24 of the test range and create the run's network on it.

        Call with `nx.host_lock` held: local runs allocate from the same range."""
        nx.ensure_guard_route()
        used = nx.used_subnet_indexes(nx.DEFAULT_STATE_DIR) | _docker_subnet_indexes(self._client)
        free = [x for x in range(1, 255) if x not in used]
        if not free:
            raise BackendError("docker backend: no free /24 left in 10.213.0.0/16")
        index = free[-1]  # from the top, away from the local backend's first choices
        self.short_id = secrets.token_hex(3)
        subnet = f"10.213.{index}.0/24"
        gateway = f"10.213.{index}.1"
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=gateway)]
        )
        self._client.networks.create(
            f"lh-{self.short_id}",
            driver="bridge",
            internal=True,  # no route, and no NAT, to anywhere but the nodes and the host
            ipam=ipam,
            labels=self._labels(),
            options={"com.docker.network.bridge.name": f"lhd{self.short_id}"},
        )
        self.host_address = gateway

    def _node_binds(self, node_name: str) -> dict[str, dict[str, str]]:
        """The run directory read-only, and read-write only what this node writes."""
        if self._shared is None:
            return {}
        shared = self._shared
        binds = {str(shared): {"bind": str(shared), "mode": "ro"}}
        for sub in (*NODE_WRITABLE, f"nodes/{node_name}"):
            path = shared / sub
            path.mkdir(parents=True, exist_ok=True)
            binds[str(path)] = {"bind": str(path), "mode": "rw"}
        return binds

    def _hand_over(self, node: Node) -> None:
        """Let NODE_USER write in `logs/` and `history/` (group, sticky) and give it the data
        directories the target made in the node's `nodes/<node>/`."""
        if self._shared is None:
            return
        for sub in NODE_WRITABLE:
            _chown_dir(self._shared / sub, subdirs=False)
        _chown_dir(self._shared / "nodes" / node.name, subdirs=True)

    def _create_containers(self, names: Sequence[str], shared_dir: Path | None) -> None:
        self._shared = None if shared_dir is None else Path(shared_dir).resolve()
        index = int(self.host_address.split(".")[2])
        nodes: list[Node] = []
        for i, node_name in enumerate(names):
            volumes = self._node_binds(node_name)
            address = f"10.213.{index}.{nx.FIRST_NODE_HOST + i}"
            container = self._client.api.create_container(
                self.image,
                command=["sleep", "infinity"],
                name=f"lh-{self.short_id}-{node_name}",
                hostname=node_name,
                labels=self._labels(**{LABEL_NODE: node_name}),
                environment=NODE_ENV,
                host_config=self._client.api.create_host_config(
                    binds=volumes,
                    cap_drop=["ALL"],
                    cap_add=["NET_ADMIN"],
                    init=True,  # reaps whatever the execs leave behind
                    network_mode=f"lh-{self.short_id}",
                ),
                networking_config=self._client.api.create_networking_config(
                    {
                        f"lh-{self.short_id}": self._client.api.create_endpoint_config(
                            ipv4_address=address
                        )
                    }
                ),
            )
            cid = container["Id"]
            self._containers[node_name] = cid
            nodes.append(Node(node_name, address, cid))
        for node in nodes:
            try:
                self._client.api.start(node.handle)
            except docker.errors.APIError as exc:
                raise BackendError(f"docker backend: starting {node.name}: {exc}") from exc
        self.nodes = nodes

    def server_root(self, package: ServerPackage) -> str:
        """Where the run image has `package`: only the packages this backend was made
        with are in it (the runner passes the target's `run_packages`)."""
        if package not in self.servers:
            have = ", ".join(p.name for p in self.servers) or "none"
            raise BackendError(
                f"docker backend: the run image has no server {package.name!r} (it has {have})"
            )
        return package.image_root

    def requirements_path(self) -> str | None:
        """The run image's requirements layer, on the programs' PYTHONPATH."""
        from harness.image.build import IMAGE_REQUIREMENTS

        return IMAGE_REQUIREMENTS if self.requirements else None

    # ------------------------------------------------------------------ commands

    def _container(self, node: Node) -> str:
        cid = self._containers.get(node.name)
        if cid is None or cid != node.handle:
            raise BackendError(
                f"docker backend: node {node.name!r} is not part of run {self.short_id}"
            )
        return cid

    def run(self, node: Node, argv: Sequence[str], timeout: float = 10.0) -> RunResult:
        """Run `argv` in the node's container and return its status and output.

        `timeout` is enforced inside the container (coreutils `timeout -s KILL`), so a
        command that hangs is killed where it runs, not merely abandoned."""
        cid = self._container(node)
        api = self.api()
        try:
            exec_id = api.exec_create(
                cid, ["timeout", "-s", "KILL", f"{timeout:g}", *argv], stdin=False
            )["Id"]
            t0 = time.monotonic()
            out, err = api.exec_start(exec_id, demux=True)
            code = api.exec_inspect(exec_id).get("ExitCode")
        except Exception as exc:
            raise BackendError(f"docker backend: `{' '.join(argv)}` on {node.name}: {exc}") from exc
        if code == _TIMED_OUT and time.monotonic() - t0 >= timeout:
            raise BackendError(
                f"docker backend: `{' '.join(argv)}` on node {node.name} timed out after {timeout}s"
            )
        return RunResult(
            int(code if code is not None else -1),
            (out or b"").decode(errors="replace"),
            (err or b"").decode(errors="replace"),
        )

    def spawn(
        self,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> DockerDaemon:
        """Start `argv` detached in the node's container; output is appended to `log_path`,
        which must be under the shared (run) directory."""
        with self._lock:
            if self._torn_down:
                raise BackendError("docker backend: spawn after teardown")
            cid = self._container(node)
            log_path = Path(log_path)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._hand_over(node)
            api = self.api()
            # The shell only redirects and then becomes the program: the exec's pid is
            # the daemon itself, which is what a pause must stop.
            script = 'exec "$@" >>"$0" 2>&1'
            try:
                exec_id = api.exec_create(
                    cid,
                    ["sh", "-c", script, str(log_path.resolve()), *argv],
                    environment=dict(env or {}),
                    stdin=False,
                    user=NODE_USER,  # never root: see the module docstring
                )["Id"]
                api.exec_start(exec_id, detach=True)
                pid = self._exec_pid(exec_id)
            except BackendError:
                raise
            except Exception as exc:
                raise BackendError(
                    f"docker backend: starting {name} on {node.name}: {exc}"
                ) from exc
            return DockerDaemon(self, node, name, exec_id, pid)

    def _exec_pid(self, exec_id: str, timeout: float = 5.0) -> int:
        def settled() -> dict[str, Any] | None:
            info: dict[str, Any] = self.api().exec_inspect(exec_id)
            ended = not info.get("Running") and info.get("ExitCode") is not None
            return info if info.get("Pid") or ended else None

        try:
            info = wait_until(settled, timeout, f"exec {exec_id[:12]} to get a pid")
        except WaitTimeout as exc:
            raise BackendError(f"docker backend: {exc}") from exc
        # Pid 0: it ended before we looked; the daemon's poll() reports the status.
        return int(info.get("Pid") or 0)

    # ------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        """Remove every container and the network of this run; safe to call again."""
        with self._lock:
            if self._torn_down:
                return
            errors = _remove_labelled(self._client, {LABEL_RUN: self.run_id}, [])
            with nx.host_lock():
                nx.maybe_remove_guard_route(nx.DEFAULT_STATE_DIR)
            self._torn_down = True
            if errors:
                raise BackendError(
                    f"docker backend: teardown of run {self.run_id} left: " + "; ".join(errors)
                )

    def __enter__(self) -> DockerBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def _chown_dir(path: Path, *, subdirs: bool) -> None:
    """Open `path` to NODE_USER's group (sticky), or with `subdirs` hand the root-owned
    directories directly in it to NODE_USER.

    Opened with O_NOFOLLOW and changed through the descriptor: a link a node planted is
    never followed, so nothing outside the run directory changes owner."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BackendError(f"docker backend: cannot hand {path} to the node user: {exc}") from exc
    try:
        if not subdirs:
            # Shared with the harness's own files (history/runner.jsonl): the node's group
            # may add files, and the sticky bit keeps it from removing or renaming the
            # harness's (root stays the owner; the kernel's protected_symlinks then also
            # refuses to let root follow a node's link there).
            os.fchown(fd, -1, NODE_GID)
            os.fchmod(fd, 0o1775)
            return
        for name in os.listdir(fd):
            try:
                sub = os.open(name, flags, dir_fd=fd)
            except OSError:
                continue  # a file or a link: files are the node's own or read-only config
            try:
                if os.fstat(sub).st_uid == 0:
                    os.fchown(sub, NODE_UID, NODE_GID)
            finally:
                os.close(sub)
    finally:
        os.close(fd)


def _docker_subnet_indexes(client: Any) -> set[int]:
    """The X of every 10.213.X.0/24 that a Docker network uses (even one whose bridge is
    not up on this host)."""
    used: set[int] = set()
    for network in client.api.networks():
        for pool in (network.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                net = ipaddress.IPv4Network(pool["Subnet"], strict=False)
                if net.overlaps(nx.TEST_NETWORK) and net.prefixlen > 16:
                    for x in range(1, 255):
                        if net.overlaps(ipaddress.IPv4Network(f"10.213.{x}.0/24")):
                            used.add(x)
    return used


def _remove_labelled(client: Any, labels: Mapping[str, str], removed: list[str]) -> list[str]:
    """Force-remove the containers, then the networks, carrying all `labels`; appends a
    line per removed object to `removed` and returns what could not be removed.

    Another harness process may be removing the same leftovers at the same moment: an
    object already gone or already being removed is not an error, and a network whose
    containers are still going away is retried briefly."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    errors: list[str] = []
    for c in client.api.containers(all=True, filters=filters):
        try:
            client.api.remove_container(c["Id"], force=True, v=True)
            removed.append(f"container {c['Names'][0].lstrip('/')}")
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                errors.append(f"container {c['Id'][:12]}: {exc}")
    for n in client.api.networks(filters=filters):
        for attempt in range(NETWORK_REMOVE_TRIES):
            try:
                client.api.remove_network(n["Id"])
                removed.append(f"network {n['Name']}")
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError as exc:
                if "active endpoints" in str(exc) and attempt + 1 < NETWORK_REMOVE_TRIES:
                    time.sleep(0.2)
                    continue
                errors.append(f"network {n['Name']}: {exc}")
                break
    return errors


def clean_leftovers() -> list[str]:
    """Remove the containers and networks of harness runs whose owner process is gone;
    returns one line per thing removed. Runs of live harness processes are untouched."""
    try:
        client = docker_client(timeout=30)
    except BackendUnavailable:
        return []
    removed: list[str] = []
    try:
        runs: dict[str, str] = {}
        for c in client.api.containers(all=True, filters={"label": [LABEL_RUN]}):
            runs[c["Labels"][LABEL_RUN]] = c["Labels"].get(LABEL_OWNER, "")
        for n in client.api.networks(filters={"label": [LABEL_RUN]}):
            runs.setdefault(n["Labels"][LABEL_RUN], n["Labels"].get(LABEL_OWNER, ""))
        for run_id, owner in runs.items():
            if _owner_alive(owner):
                continue
            before = len(removed)
            errors = _remove_labelled(client, {LABEL_RUN: run_id}, removed)
            removed[before:] = [f"run {run_id}: removed {line}" for line in removed[before:]]
            if errors:
                log.warning("leftovers of run %s not fully removed: %s", run_id, errors)
        if removed:
            with nx.host_lock():
                guard = nx.maybe_remove_guard_route(nx.DEFAULT_STATE_DIR)
            if guard:
                removed.append(guard)
    finally:
        client.close()
    return removed
