"""The `reference` target: the project's own elector (harness/elector), one per node.

Each member listens for peers on `<node address>:7000` and serves its local API on
`<node address>:7100`, which the node's candidate uses and the harness's status probe
polls from the host. Its timers read a clock control file that the clock nemesis skews.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.backends.base import Backend, Daemon, Node
from harness.elector.config import ElectorConfig, parse_config
from harness.image.servers import ServerPackage
from harness.targets.base import CandidateSpec, MemberView, TargetError, Timing

PEER_PORT = 7000
API_PORT = 7100
PROBE_SLACK_NS = 200_000_000


class ReferenceTarget:
    name = "reference"
    # Its timers read a clock control file (member_clock_file below); it needs nothing
    # of a backend beyond nodes and a Python (every backend).
    member_clock = "clock-file"
    needs: frozenset[str] = frozenset()
    server_packages: tuple[ServerPackage, ...] = ()

    def __init__(self, server: Mapping[str, Any] | None = None, source: str = "server") -> None:
        self._server = dict(server or {})
        self.config: ElectorConfig = parse_config(self._server, source)
        self._backend: Backend | None = None
        self._nodes: list[Node] = []
        self._run_dir = Path(".")
        self._http = httpx.Client()

    @property
    def stale_grace_ns(self) -> int:
        """How long a cut-off leader may go on calling itself leader: check-quorum steps
        it down within the longest election timeout, and the probe adds its own delay."""
        return self.config.election_timeout_ms[1] * 1_000_000 + PROBE_SLACK_NS

    @property
    def run_packages(self) -> tuple[ServerPackage, ...]:
        return ()

    @property
    def timing(self) -> Timing:
        """The elector's lease is its own (no separate invalidation); a leader that falls
        silent is replaced within the longest election timeout."""
        lease_s = max(self.config.lease_duration_ns, 0) / 1e9
        return Timing("reference", self.config.election_timeout_ms[1] / 1000, lease_s, lease_s)

    @property
    def nemesis_defaults(self) -> dict[str, dict[str, Any]]:
        # The member and the candidate of a node share a host, and so a clock.
        return {"clock": {"processes": "both"}}

    def _paths(self, node: Node) -> dict[str, Path]:
        base = self._run_dir / "nodes" / node.name
        return {
            "data": base / "elector-data",
            "log": self._run_dir / "logs" / f"{node.name}-elector.log",
            "out": self._run_dir / "logs" / f"{node.name}-elector.out",
            "clock": base / "member-clock.json",
            "config": self._run_dir / "elector.yaml",
        }

    def setup(self, backend: Backend, nodes: Sequence[Node], run_dir: Path) -> None:
        self._backend = backend
        self._nodes = list(nodes)
        self._run_dir = run_dir
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        config = yaml.safe_dump(self._server, sort_keys=True).encode()
        for node in nodes:
            backend.put_file(node, self._paths(node)["config"], config)
            if backend.shares_files:
                self._paths(node)["data"].mkdir(parents=True, exist_ok=True)
            # (elsewhere the elector makes its data directory itself)

    def start_member(self, node: Node) -> Daemon:
        if self._backend is None:
            raise TargetError("reference target: setup() was not called")
        paths = {k: self._backend.node_path(node, p) for k, p in self._paths(node).items()}
        peers = ",".join(f"{n.name}={n.address}:{PEER_PORT}" for n in self._nodes)
        argv = [
            self._backend.python, "-m", "harness.elector",
            "--config", paths["config"],
            "--id", node.name,
            "--peers", peers,
            "--api", f"{node.address}:{API_PORT}",
            "--data-dir", paths["data"],
            "--log-file", paths["log"],
            "--clock-file", paths["clock"],
        ]  # fmt: skip
        return self._backend.spawn(node, "elector", argv, log_path=self._paths(node)["out"])

    def candidate(self, node: Node) -> CandidateSpec:
        # The elector's lease already carries its own drift margin; the candidate only
        # allows for its request to the member on the same host.
        return CandidateSpec(
            "reference", f"http://{node.address}:{API_PORT}", {"lease_margin_ms": 10}
        )

    def probe(self, node: Node, timeout: float) -> MemberView | None:
        try:
            response = self._http.get(f"http://{node.address}:{API_PORT}/status", timeout=timeout)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        # An answer that is there but wrong is not a silence: raise, and the probe records
        # it (and keeps probing) instead of taking it for "no answer".
        try:
            data = response.json()
            leader, term = data.get("leader"), data["term"]
            if not (leader is None or isinstance(leader, str)):
                raise ValueError(f"leader must be a name or null, got {leader!r}")
            if not isinstance(term, int) or isinstance(term, bool):
                raise ValueError(f"term must be an integer, got {term!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"bad status answer from {node.name}: {exc!s:.100} in {response.text[:200]!r}"
            ) from exc
        return MemberView(node=node.name, leader=leader, term=term)

    def member_clock_file(self, node: Node) -> str:
        return str(self._paths(node)["clock"])

    def close(self) -> None:
        self._http.close()
