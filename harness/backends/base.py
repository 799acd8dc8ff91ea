"""The backend seam: nodes with their own network identity, commands and daemons on them.

A backend provisions N nodes, runs a command on a node, starts daemons on a node (and
lets the caller signal and stop them by the daemon's own handle), collects logs and tears
everything down. Nemeses act only through `Backend.run`; targets only through
`Backend.spawn` and the file calls; candidates through `Backend.spawn_candidate`.

What a backend assumes is stated, not implied:

- `shares_clock`: processes on its nodes read the harness's own kernel clock, so a
  candidate may run on its node and stamp the history there. Where it is False (ssh
  hosts), candidates run on the harness machine (`spawn_candidate`), each talking to its
  own node's member, and nothing on a node writes the history.
- `shares_files`: the run directory is the same path on every node. Where it is False,
  `node_path` says where a run-directory file lives on a node, `put_file` writes one
  there, `fetch_logs` brings the nodes' logs back into the run directory, and
  `tail_file` reads the end of a node file.

`SameHost` gives both answers (True) and the file calls for backends whose nodes live on
the harness machine (docker, local).

A backend class declares what it `offers` (keys of `OFFERS`); a target declares what it
`needs` of them (harness.targets), and a run of a target on a backend that lacks one is
refused before anything starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.image.servers import ServerPackage

log = logging.getLogger(__name__)

# What a backend can offer a run; the words a backend's `offers` and a target's `needs`
# are made of (the meanings are what the refusal of a pair says).
OFFERS: dict[str, str] = {
    "shared-clock": "node processes read the harness's own kernel clock",
    "shared-files": "the run directory is the same path on every node",
    "server-trees": "server packages unpacked (dpkg -x, no dependencies) on the nodes",
    "server-deps": "server packages installed with their Debian dependencies (e.g. a JRE)",
}


class BackendError(HarnessError, RuntimeError):
    """A backend could not do what was asked; the message says what and why."""


class BackendUnavailable(BackendError):
    """This backend cannot run here at all (no root, no daemon, ...): exit status 2."""


@contextlib.contextmanager
def undone_on_failure(backend: str, teardown: Callable[[], None]) -> Iterator[None]:
    """Provisioning: whatever fails half-way is undone by `teardown`, and the original
    error is what the caller sees (any other Exception as a BackendError)."""
    try:
        yield
    except BaseException as exc:
        try:
            teardown()
        except BackendError as cleanup_exc:
            log.error("cleanup after failed provisioning: %s", cleanup_exc)
        if isinstance(exc, BackendError) or not isinstance(exc, Exception):
            raise
        raise BackendError(f"{backend} backend: provisioning failed: {exc}") from exc


@dataclass(frozen=True)
class Node:
    """One host of the cluster as the rest of the harness sees it."""

    name: str  # "n1", "n2", ... : the name in histories and configurations
    address: str  # its address on the run's test network, reachable from the other nodes
    handle: str  # backend-specific id: network namespace name, container id, host name


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str
    stderr: str


@runtime_checkable
class Daemon(Protocol):
    """A long-running process on a node, started by `Backend.spawn`."""

    name: str
    node: Node

    def signal(self, signum: int) -> None: ...

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status if known."""
        ...

    def poll(self) -> int | None:
        """The exit status if the process has ended, else None."""
        ...


class Backend(Protocol):
    """Where nodes come from. One instance per run; `teardown` is safe to call twice."""

    name: str
    offers: frozenset[str]  # keys of OFFERS: what this backend gives a run (class-level)
    run_id: str
    host_address: str  # the harness's own address as the nodes reach it (resource, probes)
    python: str  # the Python interpreter on a node, to run the elector (and candidates there)
    shares_clock: bool  # node processes read the harness's kernel clock (see the docstring)
    shares_files: bool  # the run directory is the same path on every node
    partition_chain: str  # the iptables chain partitions use on a node

    def provision(self, names: Sequence[str], shared_dir: Path | None = None) -> list[Node]:
        """Create the nodes; `shared_dir` (the run directory) must then be readable on
        every node at the same path, and its `logs/`, `history/` and `nodes/<node>/`
        writable by that node's processes (a backend may keep the rest read-only)."""
        ...

    def run(self, node: Node, argv: Sequence[str], timeout: float = 10.0) -> RunResult: ...

    def spawn(
        self,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> Daemon: ...

    def spawn_candidate(
        self,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> Daemon:
        """Start the candidate of `node`: on the node where it shares the harness's clock,
        else on the harness machine (argv[0] is then this machine's Python)."""
        ...

    def node_path(self, node: Node, path: Path) -> str:
        """Where the run-directory file `path` lives on `node`."""
        ...

    def put_file(self, node: Node, path: Path, data: bytes) -> None:
        """Write `data` to the run-directory file `path` as `node` sees it."""
        ...

    def tail_file(self, node: Node, path: Path, nbytes: int) -> bytes:
        """The last `nbytes` of the run-directory file `path` on `node` (b"" if absent)."""
        ...

    def fetch_logs(self) -> None:
        """Bring every node's logs into the run directory (before teardown removes them)."""
        ...

    def teardown(self) -> None: ...


class SameHost:
    """The backend contract's answers for nodes on the harness machine itself: one
    kernel clock, the run directory shared at its own path (bind mount or same fs)."""

    shares_clock = True
    shares_files = True
    # Each node is a network namespace of its own: one fixed chain name cannot collide.
    partition_chain = "LH-PARTITION"

    def spawn_candidate(
        self: Backend,
        node: Node,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
    ) -> Daemon:
        return self.spawn(node, name, argv, env=env, log_path=log_path)

    def node_path(self, node: Node, path: Path) -> str:
        return str(path)

    def put_file(self, node: Node, path: Path, data: bytes) -> None:
        # Node directories are writable by the nodes: replace atomically, never write
        # through a link planted there (harness.safefile).
        from harness.safefile import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def tail_file(self, node: Node, path: Path, nbytes: int) -> bytes:
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - nbytes))
                return f.read()
        except OSError:
            return b""

    def fetch_logs(self) -> None:
        """Nothing to fetch: the nodes wrote their logs into the run directory."""


@runtime_checkable
class ServerPackages(Protocol):
    """Optional: the backend can put third-party servers (Debian packages, see
    harness.image.servers) on its nodes; it offers "server-trees" (and "server-deps" if
    it can install packages with their dependencies)."""

    def server_root(self, package: ServerPackage) -> str:
        """Where, on every node, `package`'s programs are rooted (its unpacked tree, or
        "/" for a package installed with its dependencies)."""
        ...


@runtime_checkable
class ProgramRequirements(Protocol):
    """Optional: the backend put the run's `workload.requirements` on its nodes itself
    (the docker backend's requirements layer) instead of relying on the host's Python."""

    def requirements_path(self) -> str | None:
        """The directory to put on a program's PYTHONPATH, None if the run has none."""
        ...
