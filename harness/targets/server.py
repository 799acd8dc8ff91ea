"""What the targets for third-party servers (etcd, Consul) share.

Both run a Debian-packaged Go program per node, put there by a backend that can install
server packages (`ServerPackages`); both can only have their candidates' clocks skewed,
and for both the dangerous partition cuts off the lock holder's node. A subclass names
its `program`, declares its `server_packages` (one per version it accepts, named
"<program>-<version>"), chooses its `version`, and builds its own command line and probe.

`server: {binary: /path/to/etcd}` runs the team's own build instead of Debian's: it is
copied into the run directory (which every node sees at the same path), and its
`--version` is written to logs/server-binary.txt and the harness's log. The Debian tree
still provides the tools beside it (etcdctl).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from harness.backends.base import Backend, Daemon, Node, ServerPackages
from harness.image.servers import ServerPackage
from harness.targets.base import TargetError
from harness.targets.settings import SettingsReader

log = logging.getLogger(__name__)


def read_binary(r: SettingsReader) -> str | None:
    """`binary`: an absolute path to an executable file on this machine, or absent."""
    value = r.data.get("binary")
    if value is None:
        return None
    if not isinstance(value, str) or not os.path.isabs(value):
        raise r.fail("binary", "an absolute path to the server's executable", value)
    if not os.path.isfile(value) or not os.access(value, os.X_OK):
        raise r.fail("binary", "an executable file that exists", value)
    return value


class ServerTarget:
    name: str
    program: str  # the executable under usr/bin of the package, also its log name
    version: str
    # Go programs: they read the kernel's clock (no ClockControl), and are trees that
    # need no dependencies (a subclass with `resolve_deps` packages needs "server-deps").
    member_clock = "kernel"
    needs: frozenset[str] = frozenset({"server-trees"})
    server_packages: tuple[ServerPackage, ...] = ()

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary
        self._program_path = ""
        self._backend: Backend | None = None
        self._nodes: list[Node] = []
        self._run_dir = Path(".")
        self._root = ""
        self._http = httpx.Client()

    @property
    def package(self) -> str:
        return f"{self.program}-{self.version}"

    @property
    def server_package(self) -> ServerPackage:
        """The declared package of the chosen version."""
        for package in self.server_packages:
            if package.name == self.package:
                return package
        raise TargetError(
            f"{self.name} target: no server package {self.package!r} declared; it declares "
            + (", ".join(p.name for p in self.server_packages) or "none")
        )

    @property
    def run_packages(self) -> tuple[ServerPackage, ...]:
        return (self.server_package,)

    @property
    def nemesis_defaults(self) -> dict[str, dict[str, Any]]:
        # Only the candidates' clocks can be skewed; a slow clock matters on the one that
        # holds the election, a fast one on the others.
        # Isolating the lock holder's node (its member cut off, the resource still in
        # reach) is the dangerous partition for a lock service.
        return {
            "clock": {"processes": "candidate", "rate_targets": ["holder", "follower"]},
            "partition": {"modes": ["halves", "one", "leader", "holder", "ring", "bridge"]},
        }

    @property
    def server_bin(self) -> str:
        """Where the server's programs are on every node (for external candidates that
        use the server's own tools, e.g. etcdctl)."""
        return f"{self._root}/usr/bin"

    def setup(self, backend: Backend, nodes: Sequence[Node], run_dir: Path) -> None:
        if not isinstance(backend, ServerPackages):
            raise TargetError(
                f"{self.name} target: the {backend.name} backend cannot install third-party servers"
            )
        self._backend = backend
        self._nodes = list(nodes)
        self._run_dir = run_dir
        package = self.server_package
        self._root = backend.server_root(package).rstrip("/")
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._program_path = f"{self._root}/{package.programs[self.program]}"
        if self.binary is not None:
            self._program_path = self._own_binary(run_dir)

    def _node_path(self, node: Node, path: Path) -> str:
        """Where the run-directory file `path` is on `node` (the backend knows)."""
        if self._backend is None:
            raise TargetError(f"{self.name} target: setup() was not called")
        return self._backend.node_path(node, path)

    def _spawn(self, node: Node, args: Sequence[str]) -> Daemon:
        """Start the program with `args` on `node`, logging to logs/<node>-<program>.log."""
        if self._backend is None:
            raise TargetError(f"{self.name} target: setup() was not called")
        return self._backend.spawn(
            node,
            self.program,
            [self._program_path, *args],
            log_path=self._run_dir / "logs" / f"{node.name}-{self.program}.log",
        )

    def _own_binary(self, run_dir: Path) -> str:
        """Copy the team's binary where every node sees it; record its --version."""
        assert self.binary is not None
        dest = run_dir / "bin" / self.program
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.binary, dest)
        try:
            done = subprocess.run(
                [str(dest), "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            version = (done.stdout or done.stderr).strip() or f"exit status {done.returncode}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            version = f"--version failed: {exc}"
        (run_dir / "logs" / "server-binary.txt").write_text(
            f"{self.binary}\n{version}\n", encoding="utf-8"
        )
        log.warning("%s target: own binary %s: %s", self.name, self.binary, version.splitlines()[0])
        return str(dest.resolve())

    def close(self) -> None:
        self._http.close()
