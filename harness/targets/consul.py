"""The `consul` target: Consul 1.8.7 from Debian's archive, one server per node.

Each server's HTTP API is on `<node address>:8500` (candidates use sessions and KV there),
Raft RPC on 8300 and Serf on 8301/8302; DNS is off. Defaults suit fault injection, from
what was measured (docs/FACTS.md): `raft_multiplier: 1` (Consul's default of 5 makes a failover
take 13 to 15 s) and autopilot's `cleanup_dead_servers: false` (left on, a partitioned
server is dropped from the Raft configuration and a later fault finds no quorum).

Settings (`server:` in the run's YAML):

    version: "1.8.7"
    raft_multiplier: 1
    cleanup_dead_servers: false
    extra_config: {}             # merged into each server's JSON configuration
    lock:                        # what the candidates use
      key: harness/leader
      session_ttl_s: 10          # Consul's minimum
      lock_delay_s: 0            # Consul's own default is 15
      serf_check: true           # Consul's default: the session dies with its node's
                                 # serfHealth check, possibly before its TTL runs out;
                                 # false: the TTL alone (what a TTL-timed guard assumes)

The status probe reads each server's raft term (`/v1/agent/self`) around its leader
(`/v1/status/leader`) and keeps the observation only if the term did not change between.
Consul is a Go program: clock faults cannot reach its servers (no `ClockControl`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from harness.backends.base import Backend, Daemon, Node
from harness.image.servers import SERVERS, ServerPackage
from harness.targets.base import CandidateSpec, MemberView, Timing
from harness.targets.server import ServerTarget, read_binary
from harness.targets.settings import SettingsReader
from harness.validation import deep_merge

HTTP_PORT = 8500
RAFT_PORT = 8300
VERSIONS = ("1.8.7",)
PROBE_SLACK_NS = 500_000_000
MS = 1_000_000
LEADER_LEASE_MS = 500  # raft's LeaderLeaseTimeout before the multiplier
ELECTION_TIMEOUT_MS = 1000  # raft's ElectionTimeout before the multiplier


class ConsulTarget(ServerTarget):
    name = "consul"
    program = "consul"
    server_packages: tuple[ServerPackage, ...] = (SERVERS["consul-1.8.7"],)

    def __init__(self, server: Mapping[str, Any] | None = None, source: str = "server") -> None:
        r = SettingsReader(server, source, "server.")
        r.only(
            ["version", "raft_multiplier", "cleanup_dead_servers", "extra_config", "lock",
             "binary"]
        )  # fmt: skip
        self.version = r.choice("version", VERSIONS[0], VERSIONS)
        self.raft_multiplier = r.integer("raft_multiplier", 1, 1, 10)
        self.cleanup_dead_servers = r.boolean("cleanup_dead_servers", False)
        self.extra_config = r.mapping("extra_config")
        lock = r.section("lock")
        lock.only(["key", "session_ttl_s", "lock_delay_s", "serf_check"])
        self.key = lock.text("key", "harness/leader")
        self.session_ttl_s = lock.integer("session_ttl_s", 10, 10, 86_400)
        self.lock_delay_s = lock.number("lock_delay_s", 0, 0, 60)
        self.serf_check = lock.boolean("serf_check", True)
        super().__init__(read_binary(r))

    @property
    def stale_grace_ns(self) -> int:
        """A leader that cannot reach a quorum steps down when its leader lease runs out,
        checked once per lease: up to two leases, plus the probe's own delay."""
        return 2 * LEADER_LEASE_MS * self.raft_multiplier * MS + PROBE_SLACK_NS

    @property
    def timing(self) -> Timing:
        """An unrenewed session is invalidated after up to 2 x its TTL (docs/FACTS.md),
        and the lock then stays blocked for the lock-delay."""
        return Timing(
            "consul",
            ELECTION_TIMEOUT_MS * self.raft_multiplier / 1000,
            float(self.session_ttl_s),
            2.0 * self.session_ttl_s,
            float(self.lock_delay_s),
            lease_name="session",
        )

    def setup(self, backend: Backend, nodes: Sequence[Node], run_dir: Path) -> None:
        super().setup(backend, nodes, run_dir)
        for node in nodes:
            base = run_dir / "nodes" / node.name
            (base / "consul-data").mkdir(parents=True, exist_ok=True)
            # nodes/<node>/ is writable by that node: the backend never writes through a
            # planted link (atomic replace on the same host; a fresh file on ssh hosts)
            backend.put_file(
                node, base / "consul.json", json.dumps(self.server_config(node), indent=2).encode()
            )

    def server_config(self, node: Node) -> dict[str, Any]:
        base = self._run_dir / "nodes" / node.name
        config: dict[str, Any] = {
            "server": True,
            "bootstrap_expect": len(self._nodes),
            "node_name": node.name,
            "datacenter": "dc1",
            "data_dir": self._node_path(node, base / "consul-data"),
            "bind_addr": node.address,
            "advertise_addr": node.address,
            "client_addr": node.address,
            "retry_join": [n.address for n in self._nodes if n.name != node.name],
            "retry_interval": "1s",
            "ports": {"dns": -1},
            "performance": {"raft_multiplier": self.raft_multiplier},
            "autopilot": {"cleanup_dead_servers": self.cleanup_dead_servers},
            "disable_update_check": True,
            "leave_on_terminate": False,
            "skip_leave_on_interrupt": True,
            "log_level": "INFO",
        }
        return deep_merge(config, self.extra_config)

    def start_member(self, node: Node) -> Daemon:
        config = self._node_path(node, self._run_dir / "nodes" / node.name / "consul.json")
        return self._spawn(node, ["agent", f"-config-file={config}"])

    def candidate(self, node: Node) -> CandidateSpec:
        return CandidateSpec(
            "consul",
            f"http://{node.address}:{HTTP_PORT}",
            # A session is renewed on the leader after the renewal was sent, so its
            # expiry is later than the candidate's deadline; the margin is for the write.
            {"lease_margin_ms": 200, "campaign_timeout_s": 5.0},
            {
                "key": self.key,
                "ttl_s": self.session_ttl_s,
                "lock_delay_s": self.lock_delay_s,
                "serf_check": self.serf_check,
            },
        )

    # --- the status probe ------------------------------------------------------------

    def _get(self, node: Node, path: str, timeout: float) -> Any:
        response = self._http.get(f"http://{node.address}:{HTTP_PORT}{path}", timeout=timeout)
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        return response.json()

    def _term(self, node: Node, timeout: float) -> int:
        return int(self._get(node, "/v1/agent/self", timeout)["Stats"]["raft"]["term"])

    def probe(self, node: Node, timeout: float) -> MemberView | None:
        try:
            before = self._term(node, timeout)
            address = self._get(node, "/v1/status/leader", timeout)
            after = self._term(node, timeout)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        if before != after:
            return None  # the leader read may belong to either term: not an observation
        if not address:
            return MemberView(node.name, None, after)
        host = str(address).rsplit(":", 1)[0]
        leader = next((n.name for n in self._nodes if n.address == host), None)
        if leader is None:
            return None
        return MemberView(node.name, leader, after)
