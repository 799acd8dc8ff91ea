"""The reference elector's state machine, driven in memory with a fake clock (no sockets)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from harness.elector.config import ElectorConfig, LeaseConfig
from harness.elector.node import Envelope, Node, Role
from harness.elector.protocol import (
    Heartbeat,
    HeartbeatReply,
    ProtocolError,
    RequestVote,
    TimeoutNow,
    VoteReply,
    decode,
    encode,
)
from harness.elector.state import MemoryVoteStore, PersistentState

MS = 1_000_000
IDS = ["n1", "n2", "n3"]


class RecordingStore(MemoryVoteStore):
    def __init__(self, initial: PersistentState | None = None) -> None:
        super().__init__()
        if initial is not None:
            super().save(initial)
        self.saves: list[PersistentState] = []

    def save(self, state: PersistentState) -> None:
        self.saves.append(state)
        super().save(state)


@dataclass
class Cluster:
    """Instant delivery between nodes that are not cut off; time advances in 5 ms ticks."""

    config: ElectorConfig = field(default_factory=ElectorConfig)
    now: int = 10_000 * MS
    nodes: dict[str, Node] = field(default_factory=dict)
    stores: dict[str, RecordingStore] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)
    seed: int = 1

    def __post_init__(self) -> None:
        for i, name in enumerate(IDS):
            self.stores[name] = RecordingStore()
            self.start(name, i)

    def start(self, name: str, salt: int = 0) -> None:
        self.nodes[name] = Node(
            name, IDS, self.config, self.stores[name], self.now, random.Random(self.seed + salt)
        )

    def deliver(self, envelopes: list[Envelope], sender: str) -> None:
        queue = [(sender, e) for e in envelopes]
        while queue:
            src, env = queue.pop(0)
            if src in self.cut or env.to in self.cut or env.to not in self.nodes:
                continue
            # Round-trip through the wire format so encoding is exercised too.
            message = decode(encode(env.message))
            queue += [(env.to, e) for e in self.nodes[env.to].receive(message, self.now)]

    def run(self, ms: int) -> None:
        for _ in range(ms // 5):
            self.now += 5 * MS
            for name, node in list(self.nodes.items()):
                self.deliver(node.tick(self.now), name)

    def leaders(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.role == Role.LEADER]


def test_one_leader_elected_and_everyone_agrees() -> None:
    cluster = Cluster()
    cluster.run(1500)
    assert len(cluster.leaders()) == 1
    leader = cluster.leaders()[0]
    terms = {node.term for node in cluster.nodes.values()}
    assert len(terms) == 1
    assert all(node.leader == leader for node in cluster.nodes.values())
    assert cluster.nodes[leader].acting_leader(cluster.now)
    assert 0 < cluster.nodes[leader].lease_remaining_ns(cluster.now) <= 205 * MS


def test_votes_are_saved_before_the_reply_is_returned() -> None:
    store = RecordingStore()
    node = Node("n1", IDS, ElectorConfig(), store, 0, random.Random(1))
    out = node.receive(RequestVote("n2", 4), 10_000 * MS)
    assert store.saves[-1] == PersistentState(4, "n2")
    assert out == [Envelope("n2", VoteReply("n1", 4, True))]
    # Same term, other candidate: refused, state unchanged.
    out = node.receive(RequestVote("n3", 4), 10_001 * MS)
    assert out[0].message.granted is False  # type: ignore[union-attr]
    assert store.load() == PersistentState(4, "n2")


def test_restarted_node_keeps_its_term_and_vote() -> None:
    store = RecordingStore(PersistentState(9, "n3"))
    node = Node("n1", IDS, ElectorConfig(), store, 0, random.Random(1))
    assert (node.term, node.voted_for) == (9, "n3")
    out = node.receive(RequestVote("n2", 9), 10_000 * MS)
    assert out[0].message.granted is False  # type: ignore[union-attr]


def test_prevote_does_not_change_term_or_vote() -> None:
    store = RecordingStore(PersistentState(2, None))
    node = Node("n1", IDS, ElectorConfig(), store, 0, random.Random(1))
    out = node.receive(RequestVote("n2", 3, pre_vote=True), 10_000 * MS)
    assert out[0].message == VoteReply("n1", 3, True, pre_vote=True)
    assert (node.term, node.voted_for) == (2, None)
    assert store.saves == []


def test_stickiness_refuses_votes_and_ignores_higher_terms_while_leader_is_fresh() -> None:
    node = Node("n1", IDS, ElectorConfig(), RecordingStore(), 0, random.Random(1))
    t = 10_000 * MS
    node.receive(Heartbeat("n2", 5, sent_ns=123), t)
    assert node.leader == "n2" and node.term == 5
    for pre_vote in (True, False):
        out = node.receive(RequestVote("n3", 6, pre_vote=pre_vote), t + 100 * MS)
        assert out[0].message.granted is False  # type: ignore[union-attr]
    assert node.term == 5
    # After election_timeout_min without a heartbeat the same request is granted.
    out = node.receive(RequestVote("n3", 6), t + 301 * MS)
    assert out[0].message.granted is True  # type: ignore[union-attr]
    assert node.term == 6


def test_freshly_started_node_refuses_votes_for_election_timeout_min() -> None:
    node = Node("n1", IDS, ElectorConfig(), RecordingStore(), 0, random.Random(1))
    assert node.receive(RequestVote("n2", 1), 100 * MS)[0].message.granted is False  # type: ignore[union-attr]
    assert node.receive(RequestVote("n2", 1), 301 * MS)[0].message.granted is True  # type: ignore[union-attr]


def test_without_stickiness_fresh_node_grants_at_once() -> None:
    config = ElectorConfig(leader_stickiness=False)
    node = Node("n1", IDS, config, RecordingStore(), 0, random.Random(1))
    assert node.receive(RequestVote("n2", 1), 1 * MS)[0].message.granted is True  # type: ignore[union-attr]


def test_higher_term_steps_leader_down_and_is_persisted_first() -> None:
    cluster = Cluster()
    cluster.run(1500)
    leader = cluster.leaders()[0]
    node = cluster.nodes[leader]
    store = cluster.stores[leader]
    term = node.term
    node.receive(
        HeartbeatReply(next(p for p in IDS if p != leader), term + 3, False, 0), cluster.now
    )
    assert node.role == Role.FOLLOWER and node.term == term + 3
    assert store.saves[-1] == PersistentState(term + 3, None)
    assert node.lease_remaining_ns(cluster.now) == 0


def test_lease_is_timed_from_send_of_acknowledged_round() -> None:
    cluster = Cluster()
    cluster.run(1500)
    leader = cluster.nodes[cluster.leaders()[0]]
    remaining = leader.lease_remaining_ns(cluster.now)
    # Heartbeats every 50 ms: the last acked round was sent at most 50 ms ago.
    assert 155 * MS <= remaining <= 205 * MS
    cluster.cut = {leader.id}
    cluster.run(100)
    assert leader.lease_remaining_ns(cluster.now) <= remaining - 100 * MS
    cluster.run(200)
    assert leader.lease_remaining_ns(cluster.now) == 0
    assert not leader.acting_leader(cluster.now)


def test_partitioned_leader_steps_down_and_majority_elects_after_its_lease() -> None:
    cluster = Cluster()
    cluster.run(1500)
    old = cluster.leaders()[0]
    old_node = cluster.nodes[old]
    cluster.cut = {old}
    lease_end = cluster.now + old_node.lease_remaining_ns(cluster.now)
    new_leader_at = None
    for _ in range(300):
        cluster.run(5)
        others = [n for n in cluster.leaders() if n != old]
        if others and new_leader_at is None:
            new_leader_at = cluster.now
            assert cluster.nodes[others[0]].term > old_node.term
    assert new_leader_at is not None and new_leader_at > lease_end
    assert old_node.role == Role.FOLLOWER  # check-quorum


def test_without_check_quorum_the_cut_off_leader_keeps_believing() -> None:
    config = ElectorConfig(check_quorum=False, lease=LeaseConfig(enforce=False))
    cluster = Cluster(config=config)
    cluster.run(1500)
    old = cluster.leaders()[0]
    cluster.cut = {old}
    cluster.run(2000)
    assert cluster.nodes[old].role == Role.LEADER
    assert cluster.nodes[old].acting_leader(cluster.now)
    assert cluster.nodes[old].lease_remaining_ns(cluster.now) == config.election_max_ns
    assert len(cluster.leaders()) == 2


def test_resign_hands_over_and_backs_off() -> None:
    cluster = Cluster()
    cluster.run(1500)
    old = cluster.leaders()[0]
    term = cluster.nodes[old].term
    out = cluster.nodes[old].resign(cluster.now, 1000 * MS)
    assert cluster.nodes[old].role == Role.FOLLOWER
    assert len(out) == 1 and isinstance(out[0].message, TimeoutNow)
    cluster.deliver(out, old)
    leaders = cluster.leaders()
    assert len(leaders) == 1 and leaders[0] != old
    assert cluster.nodes[leaders[0]].term == term + 1
    # The new leader resigns too; the old one is in back-off and must not take over.
    cluster.deliver(cluster.nodes[leaders[0]].resign(cluster.now, 10 * MS), leaders[0])
    for _ in range(180):
        cluster.run(5)
        assert old not in cluster.leaders()
    cluster.run(2000)
    assert len(cluster.leaders()) == 1


def test_lost_vote_memory_allows_two_leaders_in_one_term() -> None:
    """The bug that persist_votes: false models, driven step by step."""
    config = ElectorConfig(persist_votes=False, pre_vote=False, leader_stickiness=False)
    now = 10_000 * MS
    a = Node("n1", IDS, config, MemoryVoteStore(), 0, random.Random(1))
    b = Node("n2", IDS, config, MemoryVoteStore(), 0, random.Random(2))
    c = Node("n3", IDS, config, MemoryVoteStore(), 0, random.Random(3))
    req_a = a._become_candidate(now, transfer=False)[0].message
    req_c = c._become_candidate(now, transfer=False)[0].message
    assert req_a.term == req_c.term == 1
    grant = b.receive(req_a, now)[0].message
    a.receive(grant, now)
    assert a.role == Role.LEADER
    b = Node("n2", IDS, config, MemoryVoteStore(), now, random.Random(2))  # kill -9, restart
    grant = b.receive(req_c, now + MS)[0].message
    assert grant.granted  # type: ignore[union-attr]
    c.receive(grant, now + MS)
    assert c.role == Role.LEADER and a.role == Role.LEADER and a.term == c.term


def test_stale_heartbeat_is_refused_with_current_term() -> None:
    node = Node("n1", IDS, ElectorConfig(), RecordingStore(PersistentState(5, None)), 0)
    out = node.receive(Heartbeat("n2", 3, sent_ns=1), 10_000 * MS)
    assert out[0].message == HeartbeatReply("n1", 5, False, 1)
    assert node.leader is None


def test_messages_from_non_members_are_ignored() -> None:
    node = Node("n1", IDS, ElectorConfig(), RecordingStore(), 0)
    assert node.receive(RequestVote("n9", 50), 10_000 * MS) == []
    assert node.term == 0


def test_protocol_round_trip_and_strict_decoding() -> None:
    for message in (
        RequestVote("n1", 3, pre_vote=True, transfer=False),
        VoteReply("n2", 3, False, reason="sticky"),
        Heartbeat("n1", 3, 99),
        HeartbeatReply("n2", 3, True, 99),
        TimeoutNow("n1", 3),
    ):
        assert decode(encode(message)) == message
    for bad in (
        b"not json",
        b"[1]",
        b'{"kind": "nope", "src": "n1", "term": 1}',
        b'{"kind": "heartbeat", "src": "n1", "term": 1}',
        b'{"kind": "heartbeat", "src": "n1", "term": true, "sent_ns": 1}',
        b'{"kind": "heartbeat", "src": "n1", "term": -1, "sent_ns": 1}',
        b'{"kind": "timeout_now", "src": "n1", "term": 1, "extra": 0}',
    ):
        with pytest.raises(ProtocolError):
            decode(bad)
