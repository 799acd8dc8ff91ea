"""The `etcd` target: etcd 3.5.16 (or 3.4.23) from Debian's archive, one member per node.

Members serve clients on `<node address>:2379` (the candidates use the v3election API of
the JSON gateway there) and peers on `:2380`; data lives in the run directory. The status
probe reads each member's maintenance status: its raft term and the member id of the
leader it follows, mapped back to node names through the status headers and, when
needed, the member list. etcd's status `raftTerm` is the term of the member's last
*applied* entry, not its current raft term: a member that has just heard of a new leader
names it beside the old term until the new leader's first entry is applied. So a reading
that names a different leader than the member last named, in the same term, is dropped
(it would be a false term-split-brain) until the member's term catches up.

Settings (`server:` in the run's YAML):

    version: "3.5.16"            # or "3.4.23"
    heartbeat_interval_ms: 100
    election_timeout_ms: 1000
    pre_vote: true
    extra_flags: []              # more etcd flags, passed as given
    binary: /path/to/etcd        # your own etcd instead of Debian's (copied onto the nodes)
    election:                    # what the candidates use
      name: harness-leader
      lease_ttl_s: 2             # etcd raises a TTL below its minimum to the minimum

etcd is a Go program: it reads the clock through the vDSO, so a clock fault cannot reach a
member (the target offers no `ClockControl`); candidates can still be skewed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx

from harness.backends.base import Daemon, Node
from harness.image.servers import SERVERS, ServerPackage
from harness.targets.base import CandidateSpec, MemberView, Timing
from harness.targets.server import ServerTarget, read_binary
from harness.targets.settings import SettingsReader

CLIENT_PORT = 2379
PEER_PORT = 2380
VERSIONS = ("3.5.16", "3.4.23")
PROBE_SLACK_NS = 500_000_000
MS = 1_000_000


class EtcdTarget(ServerTarget):
    name = "etcd"
    program = "etcd"
    server_packages: tuple[ServerPackage, ...] = (SERVERS["etcd-3.5.16"], SERVERS["etcd-3.4.23"])

    def __init__(self, server: Mapping[str, Any] | None = None, source: str = "server") -> None:
        r = SettingsReader(server, source, "server.")
        r.only(
            ["version", "heartbeat_interval_ms", "election_timeout_ms", "pre_vote",
             "extra_flags", "election", "binary"]
        )  # fmt: skip
        self.version = r.choice("version", VERSIONS[0], VERSIONS)
        self.heartbeat_ms = r.integer("heartbeat_interval_ms", 100, 1, 10_000)
        self.election_timeout_ms = r.integer("election_timeout_ms", 1000, 5, 50_000)
        if self.election_timeout_ms < 5 * self.heartbeat_ms:
            # etcd itself refuses this at start-up; say so before anything is created.
            raise r.fail(
                "election_timeout_ms",
                f"at least 5 x heartbeat_interval_ms ({5 * self.heartbeat_ms})",
                self.election_timeout_ms,
            )
        self.pre_vote = r.boolean("pre_vote", True)
        self.extra_flags = r.strings("extra_flags")
        election = r.section("election")
        election.only(["name", "lease_ttl_s"])
        self.election_name = election.text("name", "harness-leader")
        self.lease_ttl_s = election.integer("lease_ttl_s", 2, 1, 3600)
        super().__init__(read_binary(r))
        self._names: dict[str, str] = {}  # member id (decimal string) -> node name
        self._names_lock = threading.Lock()
        self._named: dict[str, tuple[str, int]] = {}  # node -> (leader, term) it last named

    @property
    def stale_grace_ns(self) -> int:
        """A leader cut off from its quorum steps down (check-quorum) once a whole election
        timeout has passed without hearing from a majority, checked once per election
        timeout: up to two election timeouts, plus the probe's own delay."""
        return 2 * self.election_timeout_ms * MS + PROBE_SLACK_NS

    @property
    def timing(self) -> Timing:
        """The leader revokes an unrenewed lease when its TTL runs out; etcd raises a TTL
        below its minimum (1.5 election timeouts) to that minimum. When the node that
        froze or was cut off with the holder also led the cluster, the lease outlives
        its TTL: a new leader is elected first (an election timeout or more) and, taking
        over, extends every lease by an election timeout (etcd's lessor `Promote`). So a
        lease is gone for sure about TTL + 2 election timeouts after its last renewal."""
        election_s = self.election_timeout_ms / 1000
        ttl_s = max(float(self.lease_ttl_s), 1.5 * election_s)
        return Timing("etcd", election_s, ttl_s, ttl_s + 2 * election_s)

    def start_member(self, node: Node) -> Daemon:
        data_dir = self._run_dir / "nodes" / node.name / "etcd-data"
        # Made here (0700, as etcd wants it) so a backend can hand it to the node's user.
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        cluster = ",".join(f"{n.name}=http://{n.address}:{PEER_PORT}" for n in self._nodes)
        peer = f"http://{node.address}:{PEER_PORT}"
        client = f"http://{node.address}:{CLIENT_PORT}"
        args = [
            "--name", node.name,
            "--data-dir", self._node_path(node, data_dir),
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--initial-cluster", cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", f"lh-{self._run_dir.name}",
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_timeout_ms),
            f"--pre-vote={'true' if self.pre_vote else 'false'}",
            *self.extra_flags,
        ]  # fmt: skip
        return self._spawn(node, args)

    def candidate(self, node: Node) -> CandidateSpec:
        return CandidateSpec(
            "etcd",
            f"http://{node.address}:{CLIENT_PORT}",
            # A keep-alive reaches the leader after it was sent, so the server's expiry is
            # later than the candidate's deadline; the margin covers the write's own trip.
            {"lease_margin_ms": 100},
            {"election": self.election_name, "ttl_s": self.lease_ttl_s},
        )

    # --- the status probe ------------------------------------------------------------

    def _post(self, node: Node, path: str, timeout: float) -> dict[str, Any] | None:
        try:
            response = self._http.post(
                f"http://{node.address}:{CLIENT_PORT}{path}", json={}, timeout=timeout
            )
            data = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        return data if response.status_code == 200 and isinstance(data, dict) else None

    def probe(self, node: Node, timeout: float) -> MemberView | None:
        status = self._post(node, "/v3/maintenance/status", timeout)
        if status is None:
            return None
        try:
            term = int(status.get("raftTerm", 0))
            member = str(int(status["header"]["member_id"]))
            leader_id = str(int(status.get("leader", 0)))
        except (KeyError, TypeError, ValueError):
            return None
        with self._names_lock:
            self._names[member] = node.name
            known = leader_id in self._names
        if leader_id == "0":
            return MemberView(node.name, None, term)  # no leader known (the field is omitted)
        if not known:
            self._learn_members(node, timeout)
        with self._names_lock:
            leader = self._names.get(leader_id)
        if leader is None:
            return None  # a leader this harness cannot name: not an observation it can use
        with self._names_lock:
            previous = self._named.get(node.name)
            if previous is not None and previous[0] != leader and term <= previous[1]:
                return None  # the applied term lags the leader change
            self._named[node.name] = (leader, term)
        return MemberView(node.name, leader, term)

    def _learn_members(self, node: Node, timeout: float) -> None:
        listing = self._post(node, "/v3/cluster/member/list", timeout)
        if listing is None:
            return
        with self._names_lock:
            for m in listing.get("members", []):
                if m.get("name") and m.get("ID"):
                    self._names[str(int(m["ID"]))] = m["name"]
