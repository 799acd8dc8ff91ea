"""The `ssh` backend: nodes are real hosts from an inventory, driven over SSH (paramiko).

What runs where. On each host: the system's member (etcd, Consul or the reference
elector), from a content-addressed deployment directory `<remote_dir>/deploy/<name>-<hash>/`
that a later run with the same inputs reuses without uploading anything; the run's own
directory `<remote_dir>/runs/<run id>/` (node files, member logs, pid files); and the run's
watchdog (harness.backends.ssh_watchdog). On the harness machine: the candidates (one per
node, each talking to its own node's member at the node's test address), the protected
resource and the status probe, so every history stamp is taken on one clock.

Partitions are iptables rules in a chain of the run's own (`LH-<run id>`) on every host,
matching only the other nodes' test addresses, so the harness's SSH connections are never
cut; an inventory whose test address equals the harness's own source address is refused.
A daemon is signalled and polled by its own handle (pid and status files on its host), not
by a pid on the harness machine.

Dead man's switch: each host's watchdog runs as the command of an SSH session of its own,
and the harness sends it a heartbeat byte every second on that session's stdin; a host
whose watchdog gets no heartbeat for `watchdog_s` (default 15) heals itself (chain
removed, stopped processes continued and killed, run directory removed). Local
candidates die with the harness too (PR_SET_PDEATHSIG). Teardown fetches the logs first,
then does the same heal on every host itself.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import io
import json
import logging
import os
import queue
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.backends import ssh_watchdog
from harness.backends.base import (
    BackendError,
    Daemon,
    Node,
    RunResult,
    undone_on_failure,
)
from harness.backends.ssh_conn import Host, HostError, connect
from harness.backends.ssh_inventory import HostEntry, Inventory, load_inventory

if TYPE_CHECKING:
    from harness.image.servers import ServerPackage

log = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_S = 1.0
PR_SET_PDEATHSIG = 1
MIN_PYTHON = (3, 11)
DEPLOY_RECIPE = 1  # bump when the layout of a deployment directory changes


def _on_hosts(hosts: Sequence[Host], fn: Callable[[Host], T]) -> list[tuple[Host, T | Exception]]:
    """`fn` on every host at once; errors are returned, not raised."""

    def call(h: Host) -> T | Exception:
        try:
            return fn(h)
        except Exception as exc:
            return exc

    if len(hosts) <= 1:
        return [(h, call(h)) for h in hosts]
    with ThreadPoolExecutor(max_workers=len(hosts), thread_name_prefix="ssh") as pool:
        return list(zip(hosts, pool.map(call, hosts), strict=True))


def _raise_errors(what: str, results: Sequence[tuple[Host, object]]) -> None:
    errors = [f"{h.name}: {r}" for h, r in results if isinstance(r, Exception)]
    if errors:
        raise BackendError(f"ssh backend: {what}: " + "; ".join(errors))


# --------------------------------------------------------------------- daemons on hosts


class SshDaemon:
    """A process on a host, started detached by a wrapper shell that records its pid and,
    when it ends, its exit status in the run's `pids/` directory on that host."""

    def __init__(self, host: Host, node: Node, name: str, pidfile: str) -> None:
        self.name = name
        self.node = node
        self._host = host
        self._pidfile = pidfile
        self._statusfile = pidfile[: -len(".pid")] + ".status"
        self._status: int | None = None
        self._pid = 0

    @property
    def pid(self) -> int:
        """The pid on its host (meaningless on the harness machine)."""
        return self._pid

    def _read_status(self, text: str) -> int | None:
        text = text.strip()
        if text.lstrip("-").isdigit():
            self._status = int(text)
        return self._status

    def poll(self) -> int | None:
        if self._status is not None:
            return self._status
        try:
            r = self._host.exec(
                'cat "$1" 2>/dev/null || echo running', self._statusfile, timeout=10
            )
        except HostError:
            return None  # a slow or lost connection is not an exit; the watchdog covers loss
        return self._read_status(r.stdout)

    def signal(self, signum: int) -> None:
        r = self._host.exec(
            '[ -f "$1" ] && exit 3; kill -s "$3" "$(cat "$2")"',
            self._statusfile, self._pidfile, signal.Signals(signum).name[3:],
            timeout=10,
        )  # fmt: skip
        if r.returncode != 0:
            self.poll()
            why = (
                f"already exited with status {self._status}"
                if r.returncode == 3
                else r.stderr.strip()
            )
            raise BackendError(f"daemon {self.name} on {self.node.name}: cannot signal it ({why})")

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGCONT (it may be paused), SIGTERM, then SIGKILL after `timeout`: one round trip."""
        if self._status is not None:
            return self._status
        ticks = max(1, int(timeout / 0.05))
        script = (
            'S="$1"; P=$(cat "$2" 2>/dev/null)\n'
            'if [ ! -f "$S" ] && [ -n "$P" ]; then\n'
            "  kill -CONT $P 2>/dev/null; kill -TERM $P 2>/dev/null\n"
            '  i=0; while [ ! -f "$S" ] && [ $i -lt "$3" ]; do sleep 0.05; i=$((i+1)); done\n'
            '  [ -f "$S" ] || kill -KILL $P 2>/dev/null\n'
            '  i=0; while [ ! -f "$S" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done\n'
            "fi\n"
            'cat "$S" 2>/dev/null'
        )
        try:
            r = self._host.exec(
                script, self._statusfile, self._pidfile, str(ticks), timeout=timeout + 10
            )
        except HostError as exc:
            log.warning("stopping %s on %s: %s", self.name, self.node.name, exc)
            return None
        return self._read_status(r.stdout)

    def __repr__(self) -> str:
        return f"SshDaemon({self.name!r}, node={self.node.name!r}, pid={self._pid})"


# --------------------------------------------------------------- candidates on this host


class _Spawner(threading.Thread):
    """Starts the local processes from one long-lived thread, with PR_SET_PDEATHSIG: the
    kernel kills them when that thread ends, and so when the harness dies (even by
    SIGKILL). The thread lives until teardown."""

    def __init__(self) -> None:
        super().__init__(name="ssh-spawner", daemon=True)
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()

    def run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def call(self, fn: Callable[[], T]) -> T:
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future.result(timeout=30)

    def close(self) -> None:
        self._jobs.put(None)
        self.join(timeout=5)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class LocalProcess:
    """A candidate on the harness machine."""

    def __init__(self, node: Node, name: str, popen: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.node = node
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    def poll(self) -> int | None:
        return self._popen.poll()

    def signal(self, signum: int) -> None:
        if self._popen.poll() is not None:
            raise BackendError(
                f"daemon {self.name} on {self.node.name} has already exited with status "
                f"{self._popen.returncode}"
            )
        self._popen.send_signal(signum)

    def stop(self, timeout: float = 5.0) -> int | None:
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(signal.SIGCONT)
                self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(5)
        return self._popen.returncode


# ----------------------------------------------------------------------------- backend


class SshBackend:
    """Nodes on real hosts over SSH; see the module docstring."""

    name = "ssh"
    # Hosts keep their own clocks and files; server trees are uploaded (no dependencies).
    offers: frozenset[str] = frozenset({"server-trees"})
    shares_clock = False
    shares_files = False

    def __init__(
        self,
        run_id: str,
        state_dir: Path | str | None = None,
        *,
        hosts: str | Path | None = None,
        needs_python: bool = False,
        servers: Sequence[ServerPackage] = (),
        progress: Callable[[str], None] | None = None,
        inventory: Inventory | None = None,
    ) -> None:
        del state_dir  # the hosts' watchdogs are this backend's crash recovery
        if inventory is None:
            if hosts is None:
                raise BackendError(
                    "ssh backend: no inventory; pass --hosts hosts.yaml (see README, ssh backend)"
                )
            inventory = load_inventory(hosts)
        self.inventory = inventory
        self.run_id = run_id
        self.partition_chain = f"LH-{run_id[:12]}"
        self.remote_run = f"{inventory.remote_dir}/runs/{run_id}"
        self.host_address = ""
        self.python = "python3"
        self.needs_python = needs_python
        self.servers = tuple(servers)  # server trees to deploy at provision
        self.nodes: list[Node] = []
        self.timings: dict[str, float] = {}
        self.deploy_notes: list[str] = []
        self._progress = progress or (lambda line: log.info("%s", line))
        self._hosts: dict[str, Host] = {}
        self._run_dir: Path | None = None
        self._lock = threading.RLock()
        self._deployed: dict[str, str] = {}
        self._spawned = 0
        self._locals: list[LocalProcess] = []
        self._spawner: _Spawner | None = None
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._beat_hosts: list[Host] = []
        self._beat_channels: list[Any] = []
        self.healed_by_watchdog: set[str] = set()
        self._provisioned = False
        self._torn_down = False

    # ------------------------------------------------------------------ provisioning

    def provision(self, names: Sequence[str], shared_dir: Path | None = None) -> list[Node]:
        with self._lock:
            if self._provisioned or self._torn_down:
                raise BackendError("ssh backend: provision may be called once per backend")
            self._provisioned = True
            if len(names) > len(self.inventory.nodes):
                raise BackendError(
                    f"ssh backend: {len(names)} nodes asked for, but {self.inventory.source} "
                    f"lists {len(self.inventory.nodes)} hosts"
                )
            if shared_dir is None:
                raise BackendError("ssh backend: provision needs the run directory")
            self._run_dir = Path(shared_dir).resolve()
            entries = list(self.inventory.nodes[: len(names)])
            t0 = time.monotonic()
            with undone_on_failure("ssh", self.teardown):
                self._connect(entries)
                self._preflight()
                # Deployment first: a long upload must not starve the heartbeats.
                if self.needs_python:
                    self.python = self._deploy_python()
                for package in self.servers:
                    self.server_root(package)
                self._prepare_hosts()
            self.timings["provision"] = time.monotonic() - t0
            return list(self.nodes)

    def _connect(self, entries: list[HostEntry]) -> None:
        """Connect to every host before anything changes on any of them."""
        hosts: dict[str, Host] = {}
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=len(entries), thread_name_prefix="ssh") as pool:
            futures = {e.name: pool.submit(connect, self.inventory, e) for e in entries}
            for name, fut in futures.items():
                try:
                    hosts[name] = fut.result()
                except BackendError as exc:
                    errors.append(str(exc))
        self._hosts = hosts
        if errors:
            raise BackendError("ssh backend: " + "; ".join(errors))
        sources = {h.source_address for h in hosts.values()}
        for e in entries:
            if e.address in sources:
                raise BackendError(
                    f"{self.inventory.source}: node {e.name}: key 'address': {e.address} is the "
                    "address the harness connects from; partitions would cut the harness's "
                    "own SSH traffic. Give the nodes test addresses of their own"
                )
        self.host_address = hosts[entries[0].name].source_address
        self.nodes = [Node(e.name, e.address, e.name) for e in entries]

    def _preflight(self) -> None:
        """What every host needs, checked on all of them before any change."""
        need = "iptables ss python3 setsid timeout tar"
        script = (
            f'for p in {need}; do command -v $p >/dev/null 2>&1 || missing="$missing $p"; done\n'
            '[ -z "$missing" ] || { echo "missing:$missing"; exit 1; }\n'
            "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'\n"
        )
        results = _on_hosts(list(self._hosts.values()), lambda h: h.exec(script, timeout=20))
        problems = []
        for h, r in results:
            if isinstance(r, Exception):
                problems.append(f"{h.name}: {r}")
            elif r.returncode != 0:
                problems.append(f"{h.name}: {(r.stdout + r.stderr).strip()}")
            elif self.needs_python:
                major, minor = (int(x) for x in r.stdout.strip().split("."))
                if (major, minor) < MIN_PYTHON:
                    problems.append(
                        f"{h.name}: python3 is {major}.{minor}; the reference elector needs "
                        f">= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
                    )
        if problems:
            raise BackendError("ssh backend: hosts not ready: " + "; ".join(problems))

    def _prepare_hosts(self) -> None:
        """The run directory, the heal script and the watchdog on every host."""
        watchdog = Path(ssh_watchdog.__file__).read_bytes()
        heal = ssh_watchdog.heal_script(self.remote_run, self.partition_chain, self.run_id).encode()
        node_dirs = " ".join(shlex.quote(f"nodes/{n.name}") for n in self.nodes)

        def prepare(h: Host) -> None:
            r = h.exec(
                f'set -e; mkdir -p "$1"; cd "$1"; mkdir -p logs pids {node_dirs}; '
                "cat > watchdog.py",
                self.remote_run,
                stdin=watchdog,
            )
            if r.returncode != 0:
                raise HostError(f"preparing {self.remote_run}: {r.stderr.strip()}")
            self._put(h, f"{self.remote_run}/heal.sh", heal)

        _raise_errors("preparing hosts", _on_hosts(list(self._hosts.values()), prepare))
        # Each watchdog is the command of an SSH session of its own: its stdin is the
        # heartbeat stream (a channel of the host's connection; the big uploads are done
        # by now, and nothing else on that connection can hold a heartbeat up for long).
        self._beat_hosts = list(self._hosts.values())
        for h, r in _on_hosts(self._beat_hosts, self._start_watchdog):
            if isinstance(r, Exception):
                raise BackendError(f"ssh backend: starting the watchdog on {h.name}: {r}")
            self._beat_channels.append(r)
        self._beat = threading.Thread(target=self._heartbeats, name="ssh-heartbeat", daemon=True)
        self._beat.start()
        self._spawner = _Spawner()
        self._spawner.start()

    def _start_watchdog(self, h: Host) -> Any:
        transport = h.client.get_transport()
        if transport is None:
            raise BackendError(f"ssh backend: host {h.name}: connection closed")
        chan = transport.open_session(timeout=30)
        chan.exec_command(
            h.command(
                'cd "$1" && LH_RUN="$2" exec python3 watchdog.py "$1" "$3" 2>watchdog.log',
                (self.remote_run, self.run_id, f"{self.inventory.watchdog_s:g}"),
            )
        )
        chan.sendall(b".")
        # Started when it says so (after writing its pid: teardown stops it by that pid).
        chan.settimeout(30)
        got = b""
        try:
            while b"\n" not in got:
                chunk = chan.recv(64)
                if not chunk:
                    break
                got += chunk
        except TimeoutError:
            pass
        if not got.startswith(b"ready"):
            status = chan.recv_exit_status() if chan.exit_status_ready() else "?"
            raise BackendError(
                f"ssh backend: host {h.name}: the watchdog did not start (exit {status})"
            )
        return chan

    def _heartbeats(self) -> None:
        while not self._beat_stop.wait(HEARTBEAT_S):
            for h, chan in zip(self._beat_hosts, self._beat_channels, strict=True):
                try:
                    chan.sendall(b".")
                except Exception as exc:  # a host gone: its watchdog will heal it
                    log.warning("heartbeat to %s failed: %s", h.name, exc)
                if chan.exit_status_ready() and h.name not in self.healed_by_watchdog:
                    # The watchdog ended by itself: it healed the host (heartbeats late).
                    self.healed_by_watchdog.add(h.name)
                    log.error("host %s: its watchdog healed it (heartbeats were late)", h.name)

    # ------------------------------------------------------------------ deployment

    def _deploy(self, label: str, key: str, build: Callable[[], bytes], install: str) -> str:
        """Make `<remote_dir>/deploy/<label>-<key>` complete on every host: upload the
        archive `build()` makes (only if some host lacks it) and run `install` there."""
        target = f"{self.inventory.remote_dir}/deploy/{label}-{key}"
        hosts = list(self._hosts.values())
        t0 = time.monotonic()
        checks = _on_hosts(hosts, lambda h: h.exec('test -f "$1/.complete"', target, timeout=10))
        _raise_errors(f"checking {target}", checks)
        missing = [h for h, r in checks if isinstance(r, RunResult) and r.returncode != 0]
        if not missing:
            note = (
                f"deploy {label}: already on every host, nothing uploaded "
                f"({time.monotonic() - t0:.2f} s)"
            )
            self.deploy_notes.append(note)
            self._progress(note)
            return target
        archive = build()
        script = (
            'set -e; D="$1"; rm -rf "$D"; mkdir -p "$D"; cd "$D"; tar -xzf -\n'
            f"{install}\n"
            'touch "$D/.complete"'
        )

        def upload(h: Host) -> None:
            r = h.exec(script, target, stdin=archive, timeout=600)
            if r.returncode != 0:
                raise HostError(f"installing {label}: {(r.stderr or r.stdout).strip()[-800:]}")

        _raise_errors(f"deploying {label}", _on_hosts(missing, upload))
        note = (
            f"deploy {label}: uploaded {len(archive) / 1e6:.1f} MB to "
            f"{', '.join(h.name for h in missing)} in {time.monotonic() - t0:.1f} s"
        )
        self.deploy_notes.append(note)
        self._progress(note)
        return target

    def server_root(self, package: ServerPackage) -> str:
        from harness.image.servers import DEFAULT_CACHE, ensure_servers

        with self._lock:
            if package.name in self._deployed:
                return self._deployed[package.name]
            if package.resolve_deps:
                raise BackendError(
                    f"ssh backend: {package.name} needs its Debian dependencies installed, "
                    "which this backend does not do (it uploads unpacked trees)"
                )
            key = _key({"pins": package.pins(), "recipe": DEPLOY_RECIPE})

            def build() -> bytes:
                roots = ensure_servers(DEFAULT_CACHE, self._progress, packages=[package])
                return _targz(roots[package.name])

            root = self._deploy(package.name, key, build, ":")
            self._deployed[package.name] = root
            return root

    def _deploy_python(self) -> str:
        """The project's wheel and its pinned wheelhouse, installed offline into a venv."""
        from harness.image import wheels
        from harness.image.servers import DEFAULT_CACHE

        pins = wheels.third_party_pins()
        key = _key(
            {
                "pins": pins,
                "sources": wheels.source_hash(),
                "target": list(wheels.TARGET_PIP_ARGS),
                "recipe": DEPLOY_RECIPE,
            }
        )

        def build() -> bytes:
            house = wheels.ensure_wheelhouse(DEFAULT_CACHE, pins, self._progress)
            tools = wheels.ensure_build_tools(DEFAULT_CACHE, self._progress)
            with tempfile.TemporaryDirectory(prefix="lh-ssh-wheels.") as tmp:
                stage = Path(tmp) / "wheels"
                stage.mkdir()
                for f in house.iterdir():
                    shutil.copy2(f, stage / f.name)
                wheel = wheels.build_project_wheel(
                    Path(tmp) / "project", tools, progress=self._progress
                )
                (stage / wheel.name).write_bytes(wheel.read_bytes())
                (stage / "project.txt").write_text(wheel.name + "\n")
                return _targz(stage, arcname="wheels")

        install = (
            "python3 -m venv venv\n"
            "venv/bin/python -m pip install --no-index --no-cache-dir --no-compile "
            "--disable-pip-version-check "
            "--quiet --find-links wheels -r wheels/requirements.txt "
            '"wheels/$(cat wheels/project.txt)"\n'
            'venv/bin/python -c "import harness.elector"\n'
            "rm -rf wheels"
        )
        root = self._deploy("python", key, build, install)
        return f"{root}/venv/bin/python"

    # ------------------------------------------------------------------ files

    def _host(self, node: Node) -> Host:
        host = self._hosts.get(node.name)
        if host is None or node.handle != node.name:
            raise BackendError(f"ssh backend: node {node.name!r} is not part of run {self.run_id}")
        return host

    def node_path(self, node: Node, path: Path) -> str:
        if self._run_dir is None:
            raise BackendError("ssh backend: not provisioned")
        try:
            rel = Path(path).resolve().relative_to(self._run_dir)
        except ValueError:
            raise BackendError(
                f"ssh backend: {path} is not in the run directory {self._run_dir}"
            ) from None
        return f"{self.remote_run}/{rel.as_posix()}" if rel.parts else self.remote_run

    def _put(self, host: Host, remote: str, data: bytes) -> None:
        r = host.exec('mkdir -p "$(dirname "$1")" && cat > "$1"', remote, stdin=data)
        if r.returncode != 0:
            raise BackendError(f"ssh backend: writing {remote} on {host.name}: {r.stderr.strip()}")

    def put_file(self, node: Node, path: Path, data: bytes) -> None:
        self._put(self._host(node), self.node_path(node, path), data)

    def tail_file(self, node: Node, path: Path, nbytes: int) -> bytes:
        r = self._host(node).exec(
            'tail -c "$2" "$1" 2>/dev/null', self.node_path(node, path), str(nbytes)
        )
        return r.stdout.encode() if r.returncode == 0 else b""

    def fetch_logs(self) -> None:
        """Every host's `logs/` into the run directory's `logs/` (names carry the node)."""
        if self._run_dir is None or not self._hosts:
            return
        dest = self._run_dir / "logs"
        dest.mkdir(parents=True, exist_ok=True)

        def fetch(h: Host) -> None:
            chan_out = h.exec_raw(
                h.command(
                    'cd "$1/logs" 2>/dev/null && tar -cf - . | base64 -w0', (self.remote_run,)
                ),
                timeout=120,
            )
            if chan_out.returncode != 0 or not chan_out.stdout:
                raise HostError(f"fetching logs: {chan_out.stderr.strip() or 'no logs directory'}")
            with tarfile.open(
                fileobj=io.BytesIO(base64.b64decode(chan_out.stdout)), mode="r:"
            ) as tar:
                tar.extractall(dest, filter="data")

        results = _on_hosts(list(self._hosts.values()), fetch)
        for h, r in results:
            if isinstance(r, Exception):
                log.warning("logs of %s: %s", h.name, r)

    # ------------------------------------------------------------------ commands

    def run(self, node: Node, argv: Sequence[str], timeout: float = 10.0) -> RunResult:
        """Run `argv` on the node's host as root; `timeout` is enforced there too."""
        host = self._host(node)
        r = host.exec('exec timeout -s KILL "$@"', f"{timeout:g}", *argv, timeout=timeout + 10)
        if r.returncode == 137:
            raise BackendError(
                f"ssh backend: `{' '.join(argv)}` on node {node.name} timed out after {timeout}s"
            )
        return r

    def spawn(
        self,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> Daemon:
        """Start `argv` detached on the node's host; output goes to the node's copy of
        `log_path` (fetched into the run directory at teardown)."""
        with self._lock:
            if self._torn_down:
                raise BackendError("ssh backend: spawn after teardown")
            host = self._host(node)
            self._spawned += 1
            pidfile = f"{self.remote_run}/pids/{name}-{self._spawned}.pid"
        log_remote = self.node_path(node, log_path)
        envs = [f"{k}={v}" for k, v in (env or {}).items()]
        # The wrapper waits for the program and records its status; LH_RUN marks every
        # process of the run, so a heal kills only those.
        script = (
            'P="$1"; L="$2"; shift 2; mkdir -p "$(dirname "$L")"\n'
            'rm -f "$P"\n'
            "export P L\n"
            'setsid sh -c \'"$@" >>"$L" 2>&1 </dev/null & p=$!; echo $p > "$P.tmp"; '
            'mv "$P.tmp" "$P"; wait $p; echo $? > "${P%.pid}.status"\' sh "$@" '
            ">/dev/null 2>&1 </dev/null &\n"
            'i=0; while [ ! -f "$P" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n'
            'cat "$P"'
        )
        argv_full = ["env", f"LH_RUN={self.run_id}", *envs, *argv]
        r = host.exec(script, pidfile, log_remote, *argv_full, timeout=20)
        if r.returncode != 0 or not r.stdout.strip().isdigit():
            why = (r.stderr or r.stdout).strip()
            if node.name in self.healed_by_watchdog:
                why = (
                    f"its watchdog healed the host: no heartbeat for "
                    f"{self.inventory.watchdog_s:g} s (raise watchdog_s on a slow link or host)"
                )
            raise BackendError(f"ssh backend: starting {name} on {node.name}: {why}")
        daemon = SshDaemon(host, node, name, pidfile)
        daemon._pid = int(r.stdout.strip())
        return daemon

    def spawn_candidate(
        self,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> Daemon:
        """The candidate runs here, on the harness machine's clock, and dies with it."""
        with self._lock:
            if self._torn_down or self._spawner is None:
                raise BackendError("ssh backend: spawn after teardown or before provision")
            spawner = self._spawner
        log_path.parent.mkdir(parents=True, exist_ok=True)

        def start() -> subprocess.Popen[bytes]:
            with open(log_path, "ab") as out:
                return subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **(env or {})},
                    preexec_fn=_die_with_parent,
                )

        process = LocalProcess(node, name, spawner.call(start))
        with self._lock:
            self._locals.append(process)
        return process

    # ------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        """Stop the heartbeats, then on every host: stop the watchdog, remove the chain,
        kill the run's processes and remove its directory. Safe to call again."""
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        t0 = time.monotonic()
        errors: list[str] = []
        for process in self._locals:
            with contextlib.suppress(Exception):
                process.stop(timeout=2.0)
        if self._spawner is not None:
            self._spawner.close()
        self._beat_stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)
        heal = ssh_watchdog.heal_script(self.remote_run, self.partition_chain, self.run_id)
        stop_watchdog = (
            'W=$(cat "$1/watchdog.pid" 2>/dev/null)\n'
            'if [ -n "$W" ] && tr "\\0" "\\n" </proc/$W/environ 2>/dev/null '
            '| grep -qx "LH_RUN=$2"; then kill -KILL $W; fi\n'
        )

        def clean(h: Host) -> None:
            r = h.exec(stop_watchdog + heal, self.remote_run, self.run_id, timeout=60)
            if r.returncode != 0:
                raise HostError(f"heal failed ({r.returncode}): {r.stderr.strip()}")

        for h, r in _on_hosts(list(self._hosts.values()), clean):
            if isinstance(r, Exception):
                errors.append(f"{h.name}: {r}")
        for h in self._hosts.values():
            h.close()
        self.timings["teardown"] = time.monotonic() - t0
        if errors:
            raise BackendError(
                f"ssh backend: teardown of run {self.run_id} failed on some hosts (their "
                f"watchdogs heal them within {self.inventory.watchdog_s:g} s): " + "; ".join(errors)
            )

    def close(self) -> None:
        for h in self._hosts.values():
            h.close()

    def __enter__(self) -> SshBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def _key(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _targz(root: Path, arcname: str = ".") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(root, arcname=arcname)
    return buf.getvalue()
