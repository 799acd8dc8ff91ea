"""The backend seam: nodes with their own network identity, commands and daemons on them.

A backend provisions N nodes, runs a command on a node, starts daemons on a node (and
lets the caller signal and stop them), collects logs and tears everything down. Nemeses
act only through `Backend.run`; targets and candidates only through `Backend.spawn`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
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
    extra: Mapping[str, str] = field(default_factory=dict)


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

    @property
    def pid(self) -> int: ...

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
    run_id: str
    host_address: str  # the harness's own address as the nodes reach it (resource, probes)
    python: str  # the Python interpreter on a node, to run the elector and the candidates

    def provision(self, names: Sequence[str], shared_dir: Path | None = None) -> list[Node]:
        """Create the nodes; `shared_dir` (the run directory) must then be readable and
        writable on every node at the same path."""
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

    def teardown(self) -> None: ...


@runtime_checkable
class ServerPackages(Protocol):
    """Optional: the backend can put third-party servers (Debian packages unpacked with
    `dpkg -x`, see harness.image.servers) on its nodes."""

    def server_root(self, package: str) -> str:
        """Where, on every node, the tree of `package` (e.g. "etcd-3.5.16") is unpacked."""
        ...
