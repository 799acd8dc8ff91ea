"""The Raft-style election state machine of one node, with no sockets and no clock of its own.

`Node` is driven by two calls, `tick(now_ns)` and `receive(message, now_ns)`, plus
`resign`; each returns the messages to send. Time is always passed in (skewed nanoseconds
from the node's SkewClock), so tests can run a whole cluster in memory with a fake clock.
Term and vote go through a `VoteStore` and are saved before the node acts on them.

Safety of the leader lease rests on three rules working together: the lease is timed from
the send time of a heartbeat round that a majority acknowledged; a follower that heard
from a current leader less than `election_timeout_min` ago (on its own clock) neither votes
nor pre-votes for anyone else and ignores their higher terms (leader stickiness); and a
node that has just started behaves as if it had just heard from a leader, because it may
have acknowledged a heartbeat right before it crashed. So no other leader can be elected
before `election_timeout_min` has passed on a member of the acknowledging majority, and the
lease is that window shrunk by the assumed clock drift and a margin.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.elector.config import ElectorConfig
from harness.elector.protocol import (
    Heartbeat,
    HeartbeatReply,
    Message,
    RequestVote,
    TimeoutNow,
    VoteReply,
)
from harness.elector.state import PersistentState, VoteStore


class Role(StrEnum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True)
class Envelope:
    to: str
    message: Message


class Node:
    def __init__(
        self,
        node_id: str,
        members: list[str],
        config: ElectorConfig,
        store: VoteStore,
        now_ns: int,
        rng: random.Random | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if node_id not in members:
            raise ValueError(f"node {node_id!r} is not one of the members {members}")
        self.id = node_id
        self.peers = sorted(m for m in set(members) if m != node_id)
        self.majority = (len(self.peers) + 1) // 2 + 1
        self.config = config
        self._store = store
        self._rng = rng or random.Random()
        self._log = log or logging.getLogger("elector")

        saved = store.load()
        self.term = saved.term
        self.voted_for = saved.voted_for
        self.role = Role.FOLLOWER
        self.leader: str | None = None

        self._started_ns = now_ns
        self._leader_contact_ns: int | None = None
        self._election_deadline = now_ns + self._random_timeout()
        self._backoff_until = now_ns
        # candidate and pre-candidate state
        self._prevoting = False
        self._votes: set[str] = set()
        self._transfer = False
        self._retry_at = now_ns
        # leader state
        self._next_heartbeat = now_ns
        self._acked_sent: dict[str, int] = {}
        self._last_heard: dict[str, int] = {}
        self._lease_was_valid = False
        self._log.info(
            "started: term %d, voted_for %s, members %s", self.term, self.voted_for, members
        )

    # ----------------------------------------------------------------- queries

    def lease_expiry_ns(self) -> int | None:
        """Skewed time at which the current lease ends; None when there is no lease."""
        if self.role != Role.LEADER:
            return None
        needed = self.majority - 1
        if needed == 0:
            return None  # a one-node cluster renews on every tick; see lease_remaining_ns
        acks = sorted(self._acked_sent.values(), reverse=True)
        if len(acks) < needed:
            return None
        return acks[needed - 1] + self.config.lease_duration_ns

    def lease_remaining_ns(self, now_ns: int) -> int:
        if self.role != Role.LEADER:
            return 0
        if not self.config.lease.enforce:
            # The unsafe configuration: believing is enough.
            return self.config.election_max_ns
        if self.majority == 1:
            return self.config.lease_duration_ns
        expiry = self.lease_expiry_ns()
        return 0 if expiry is None else max(0, expiry - now_ns)

    def acting_leader(self, now_ns: int) -> bool:
        """True when this node may act as leader right now."""
        return self.lease_remaining_ns(now_ns) > 0

    def in_backoff(self, now_ns: int) -> bool:
        return now_ns < self._backoff_until

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "leader": self.leader,
            "term": self.term,
            "role": self.role.value,
            "voted_for": self.voted_for,
        }

    # ----------------------------------------------------------------- driving

    def tick(self, now_ns: int) -> list[Envelope]:
        if self.role == Role.LEADER:
            return self._tick_leader(now_ns)
        out: list[Envelope] = []
        if (self.role == Role.CANDIDATE or self._prevoting) and now_ns >= self._retry_at:
            # Ask again whoever has not granted: a lost request must not cost an election.
            out += self._vote_requests(now_ns, only_missing=True)
        if now_ns >= self._election_deadline:
            self._election_deadline = now_ns + self._random_timeout()
            if self.in_backoff(now_ns):
                return out
            if self.leader is not None:
                self._log.info("election timeout: lost leader %s", self.leader)
                self.leader = None
            if self.config.pre_vote:
                out += self._start_prevote(now_ns)
            else:
                out += self._become_candidate(now_ns, transfer=False)
        return out

    def receive(self, message: Message, now_ns: int) -> list[Envelope]:
        if message.src not in self.peers:
            self._log.warning("ignored %s from non-member %r", message.kind, message.src)
            return []
        if isinstance(message, RequestVote):
            return self._on_request_vote(message, now_ns)
        granted_prevote = isinstance(message, VoteReply) and message.pre_vote and message.granted
        # A granted pre-vote carries the proposed term, which nobody has entered yet.
        if message.term > self.term and not granted_prevote:
            self._become_follower(message.term, now_ns, f"{message.kind} from {message.src}")
        if isinstance(message, VoteReply):
            return self._on_vote_reply(message, now_ns)
        if isinstance(message, Heartbeat):
            return self._on_heartbeat(message, now_ns)
        if isinstance(message, HeartbeatReply):
            self._on_heartbeat_reply(message, now_ns)
            return []
        return self._on_timeout_now(message, now_ns)

    def resign(self, now_ns: int, backoff_ns: int) -> list[Envelope]:
        """Step down (if leading or campaigning) and stay out of elections for the back-off."""
        self._backoff_until = max(self._backoff_until, now_ns + backoff_ns)
        out: list[Envelope] = []
        if self.role == Role.LEADER:
            # Hand over to the follower heard from most recently: it is the likeliest to win.
            target = max(self.peers, key=lambda p: self._last_heard.get(p, -1), default=None)
            self._log.info(
                "resigned leadership of term %d; back-off %d ms; handing over to %s",
                self.term,
                backoff_ns // 1_000_000,
                target,
            )
            if target is not None:
                out.append(Envelope(target, TimeoutNow(self.id, self.term)))
        else:
            self._log.info(
                "resign as %s in term %d; back-off %d ms",
                self.role,
                self.term,
                backoff_ns // 1_000_000,
            )
        self._to_follower_role(now_ns)
        self.leader = None
        self._leader_contact_ns = None
        return out

    # ----------------------------------------------------------------- helpers

    def _random_timeout(self) -> int:
        low, high = self.config.election_min_ns, self.config.election_max_ns
        return self._rng.randint(low, high)

    def _persist(self, term: int, voted_for: str | None) -> None:
        """Save before changing memory: nothing may act on a term or vote not yet durable."""
        if (term, voted_for) != (self.term, self.voted_for):
            self._store.save(PersistentState(term=term, voted_for=voted_for))
            if term != self.term:
                self._log.info("term %d -> %d", self.term, term)
            self.term, self.voted_for = term, voted_for

    def _to_follower_role(self, now_ns: int) -> None:
        if self.role == Role.LEADER:
            self._log.info("became follower in term %d (was leader)", self.term)
        elif self.role == Role.CANDIDATE:
            self._log.info("became follower in term %d (was candidate)", self.term)
        self.role = Role.FOLLOWER
        self._prevoting = False
        self._votes = set()
        self._acked_sent = {}
        self._lease_was_valid = False

    def _become_follower(self, term: int, now_ns: int, why: str) -> None:
        self._persist(term, None)
        self._to_follower_role(now_ns)
        self.leader = None
        self._leader_contact_ns = None
        self._election_deadline = now_ns + self._random_timeout()
        self._log.debug("adopted term %d after %s", term, why)

    def _sticky_reason(self, now_ns: int) -> str | None:
        """Why this node must not help elect anyone else now (leader stickiness), or None."""
        window = self.config.election_min_ns
        if now_ns - self._started_ns < window:
            return "started less than election_timeout_min ago"
        if self.role == Role.LEADER:
            if self._quorum_recent(now_ns):
                return "I am leader and heard from a majority"
            return None
        if (
            self.leader is not None
            and self._leader_contact_ns is not None
            and now_ns - self._leader_contact_ns < window
        ):
            return f"heard from leader {self.leader} within election_timeout_min"
        return None

    def _quorum_recent(self, now_ns: int) -> bool:
        window = self.config.election_min_ns
        heard = sum(
            1 for p in self.peers if now_ns - self._last_heard.get(p, now_ns - window) < window
        )
        return heard + 1 >= self.majority

    # ----------------------------------------------------------------- elections

    def _vote_requests(self, now_ns: int, only_missing: bool) -> list[Envelope]:
        self._retry_at = now_ns + self.config.heartbeat_ns
        if self._prevoting:
            request = RequestVote(self.id, self.term + 1, pre_vote=True)
        else:
            request = RequestVote(self.id, self.term, transfer=self._transfer)
        targets = [p for p in self.peers if not (only_missing and p in self._votes)]
        return [Envelope(p, request) for p in targets]

    def _start_prevote(self, now_ns: int) -> list[Envelope]:
        self._prevoting = True
        self._votes = {self.id}
        self._log.info("pre-vote for term %d started", self.term + 1)
        if len(self._votes) >= self.majority:
            return self._become_candidate(now_ns, transfer=False)
        return self._vote_requests(now_ns, only_missing=False)

    def _become_candidate(self, now_ns: int, transfer: bool) -> list[Envelope]:
        self._persist(self.term + 1, self.id)
        self.role = Role.CANDIDATE
        self.leader = None
        self._prevoting = False
        self._transfer = transfer
        self._votes = {self.id}
        self._election_deadline = now_ns + self._random_timeout()
        self._log.info(
            "became candidate in term %d%s", self.term, " (leadership transfer)" if transfer else ""
        )
        if len(self._votes) >= self.majority:
            return self._become_leader(now_ns)
        return self._vote_requests(now_ns, only_missing=False)

    def _become_leader(self, now_ns: int) -> list[Envelope]:
        self.role = Role.LEADER
        self.leader = self.id
        self._acked_sent = {}
        # The votes just received count as contact for check-quorum's first window.
        self._last_heard = {p: now_ns for p in self.peers}
        self._lease_was_valid = False
        self._log.info("became leader of term %d with votes %s", self.term, sorted(self._votes))
        self._next_heartbeat = now_ns
        return self._tick_leader(now_ns)

    def _on_request_vote(self, msg: RequestVote, now_ns: int) -> list[Envelope]:
        kind = "pre-vote" if msg.pre_vote else "vote"
        sticky = None
        if self.config.leader_stickiness and not msg.transfer:
            sticky = self._sticky_reason(now_ns)
        grant = False
        if msg.term < self.term:
            reason = f"stale term {msg.term} < {self.term}"
        elif sticky is not None and (msg.term > self.term or self.voted_for != msg.src):
            # Ignore the higher term too: adopting it would depose a leader whose lease
            # the other members are still honouring.
            reason = sticky
        elif msg.pre_vote:
            # A higher proposed term is enough; in our own term only if free to vote.
            free = self.voted_for in (None, msg.src) and self.leader is None
            grant = msg.term > self.term or free
            reason = "" if grant else f"already voted for {self.voted_for} or follow a leader"
        else:
            if msg.term > self.term:
                self._become_follower(msg.term, now_ns, f"vote request from {msg.src}")
            if self.voted_for in (None, msg.src):
                self._persist(self.term, msg.src)
                self._election_deadline = now_ns + self._random_timeout()
                grant = True
                reason = ""
            else:
                reason = f"already voted for {self.voted_for} in term {self.term}"
        if grant:
            self._log.info("granted %s to %s for term %d", kind, msg.src, msg.term)
        else:
            self._log.info("refused %s to %s for term %d: %s", kind, msg.src, msg.term, reason)
        reply_term = msg.term if (grant and msg.pre_vote) else self.term
        reply = VoteReply(self.id, reply_term, grant, pre_vote=msg.pre_vote, reason=reason)
        return [Envelope(msg.src, reply)]

    def _on_vote_reply(self, msg: VoteReply, now_ns: int) -> list[Envelope]:
        if msg.pre_vote:
            if not self._prevoting or msg.term != self.term + 1 or not msg.granted:
                return []
            self._votes.add(msg.src)
            if len(self._votes) >= self.majority:
                self._log.info("pre-vote won with %s", sorted(self._votes))
                return self._become_candidate(now_ns, transfer=False)
            return []
        if self.role != Role.CANDIDATE or msg.term != self.term or not msg.granted:
            return []
        self._votes.add(msg.src)
        if len(self._votes) >= self.majority:
            return self._become_leader(now_ns)
        return []

    def _on_timeout_now(self, msg: TimeoutNow, now_ns: int) -> list[Envelope]:
        if msg.term != self.term or self.role == Role.LEADER:
            return []
        if self.in_backoff(now_ns):
            self._log.info("ignored leadership transfer from %s: in resign back-off", msg.src)
            return []
        self._log.info("leadership transfer from %s: campaigning now", msg.src)
        return self._become_candidate(now_ns, transfer=True)

    # ----------------------------------------------------------------- heartbeats

    def _on_heartbeat(self, msg: Heartbeat, now_ns: int) -> list[Envelope]:
        if msg.term < self.term:
            return [Envelope(msg.src, HeartbeatReply(self.id, self.term, False, msg.sent_ns))]
        if self.role == Role.LEADER:
            # Impossible with durable votes; reachable with persist_votes: false.
            self._log.error("two leaders in term %d: %s and me", self.term, msg.src)
            return [Envelope(msg.src, HeartbeatReply(self.id, self.term, False, msg.sent_ns))]
        if self.role == Role.CANDIDATE or self._prevoting:
            self._to_follower_role(now_ns)
        if self.leader != msg.src:
            self._log.info("following leader %s in term %d", msg.src, self.term)
            self.leader = msg.src
        self._leader_contact_ns = now_ns
        self._election_deadline = now_ns + self._random_timeout()
        return [Envelope(msg.src, HeartbeatReply(self.id, self.term, True, msg.sent_ns))]

    def _on_heartbeat_reply(self, msg: HeartbeatReply, now_ns: int) -> None:
        if self.role != Role.LEADER or msg.term != self.term:
            return
        self._last_heard[msg.src] = now_ns
        if msg.success:
            previous = self._acked_sent.get(msg.src, msg.sent_ns)
            self._acked_sent[msg.src] = max(previous, msg.sent_ns)

    def _tick_leader(self, now_ns: int) -> list[Envelope]:
        if self.config.check_quorum and not self._quorum_recent(now_ns):
            self._log.info(
                "check-quorum: no majority heard within election_timeout_min; stepping down"
            )
            self._to_follower_role(now_ns)
            self.leader = None
            self._election_deadline = now_ns + self._random_timeout()
            return []
        valid = self.acting_leader(now_ns)
        if valid and not self._lease_was_valid:
            self._log.info("lease valid in term %d", self.term)
        elif self._lease_was_valid and not valid:
            self._log.info("lease expired in term %d", self.term)
        self._lease_was_valid = valid
        if now_ns < self._next_heartbeat:
            return []
        self._next_heartbeat = now_ns + self.config.heartbeat_ns
        beat = Heartbeat(self.id, self.term, now_ns)
        return [Envelope(p, beat) for p in self.peers]
