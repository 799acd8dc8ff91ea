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
from harness.targets.base import CandidateSpec, MemberView, TargetError

PEER_PORT = 7000
API_PORT = 7100
PROBE_SLACK_NS = 200_000_000


class ReferenceTarget:
    name = "reference"

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
        (run_dir / "elector.yaml").write_text(yaml.safe_dump(self._server, sort_keys=True))
        for node in nodes:
            self._paths(node)["data"].mkdir(parents=True, exist_ok=True)

    def start_member(self, node: Node) -> Daemon:
        if self._backend is None:
            raise TargetError("reference target: setup() was not called")
        paths = self._paths(node)
        peers = ",".join(f"{n.name}={n.address}:{PEER_PORT}" for n in self._nodes)
        argv = [
            self._backend.python, "-m", "harness.elector",
            "--config", str(paths["config"]),
            "--id", node.name,
            "--peers", peers,
            "--api", f"{node.address}:{API_PORT}",
            "--data-dir", str(paths["data"]),
            "--log-file", str(paths["log"]),
            "--clock-file", str(paths["clock"]),
        ]  # fmt: skip
        return self._backend.spawn(node, "elector", argv, log_path=paths["out"])

    def candidate(self, node: Node) -> CandidateSpec:
        # The elector's lease already carries its own drift margin; the candidate only
        # allows for its request to the member on the same host.
        return CandidateSpec(
            "reference", f"http://{node.address}:{API_PORT}", {"lease_margin_ms": 10}
        )

    def probe(self, node: Node, timeout: float) -> MemberView | None:
        try:
            response = self._http.get(f"http://{node.address}:{API_PORT}/status", timeout=timeout)
            data = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if response.status_code != 200:
            return None
        return MemberView(node=node.name, leader=data.get("leader"), term=int(data["term"]))

    def member_clock_file(self, node: Node) -> str:
        return str(self._paths(node)["clock"])

    def close(self) -> None:
        self._http.close()
