"""What the targets for third-party servers (etcd, Consul) share.

Both run a Debian-packaged Go program per node, put there by a backend that can install
server packages (`ServerPackages`); both can only have their candidates' clocks skewed,
and for both the dangerous partition cuts off the lock holder's node. A subclass names
its `program` and `version`, and builds its own command line and probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from harness.backends.base import Backend, Daemon, Node, ServerPackages
from harness.targets.base import TargetError


class ServerTarget:
    name: str
    program: str  # the executable under usr/bin of the package, also its log name
    version: str

    def __init__(self) -> None:
        self._backend: Backend | None = None
        self._nodes: list[Node] = []
        self._run_dir = Path(".")
        self._root = ""
        self._http = httpx.Client()

    @property
    def package(self) -> str:
        return f"{self.program}-{self.version}"

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

    def setup(self, backend: Backend, nodes: Sequence[Node], run_dir: Path) -> None:
        if not isinstance(backend, ServerPackages):
            raise TargetError(
                f"{self.name} target: the {backend.name} backend cannot install third-party servers"
            )
        self._backend = backend
        self._nodes = list(nodes)
        self._run_dir = run_dir
        self._root = backend.server_root(self.package)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def _spawn(self, node: Node, args: Sequence[str]) -> Daemon:
        """Start the program with `args` on `node`, logging to logs/<node>-<program>.log."""
        if self._backend is None:
            raise TargetError(f"{self.name} target: setup() was not called")
        return self._backend.spawn(
            node,
            self.program,
            [f"{self._root}/usr/bin/{self.program}", *args],
            log_path=self._run_dir / "logs" / f"{node.name}-{self.program}.log",
        )

    def close(self) -> None:
        self._http.close()
