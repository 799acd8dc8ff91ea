"""One running elector node: wires the state machine to the clock, the peers and the API.

`ElectorServer` owns the `Node`, the `SkewClock`, the peer transport and the HTTP API. A
tick loop wakes every `tick_ms` and lets the node compare `clock.now_ns()` with its
deadlines; protocol timers are never asyncio timers with durations, because the clock's
rate may change while the node runs. Every message and API call first reads the clock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from harness.elector.api import ApiServer
from harness.elector.config import ElectorConfig
from harness.elector.node import Envelope, Node
from harness.elector.protocol import Message, encode
from harness.elector.state import FileVoteStore, MemoryVoteStore, VoteStore
from harness.elector.transport import Address, PeerTransport
from harness.skewclock import SkewClock

# Tokens are term * GRANTS_PER_TERM + grant number: ordered by term first, then by grant.
GRANTS_PER_TERM = 1_000_000


class ElectorServer:
    def __init__(
        self,
        node_id: str,
        peers: dict[str, Address],
        api: Address,
        config: ElectorConfig,
        data_dir: str,
        clock: SkewClock,
        log: logging.Logger,
    ) -> None:
        self.config = config
        self.clock = clock
        self.api_address = api
        self._log = log
        store: VoteStore = FileVoteStore(data_dir) if config.persist_votes else MemoryVoteStore()
        self.node = Node(node_id, list(peers), config, store, clock.now_ns(), log=log)
        self.transport = PeerTransport(node_id, peers, self.deliver, log)
        self.api = ApiServer(self, log)
        # (term, grant number in that term, client) of the latest campaign answered.
        self._grant: tuple[int, int, str | None] | None = None

    # ------------------------------------------------------------ node driving

    def _dispatch(self, envelopes: list[Envelope]) -> None:
        for env in envelopes:
            self.transport.send(env.to, encode(env.message))

    def advance(self) -> int:
        """Run the node's timers up to now; returns the time used, for the caller to reuse."""
        now = self.clock.now_ns()
        self._dispatch(self.node.tick(now))
        return now

    def deliver(self, message: Message) -> None:
        self._dispatch(self.node.receive(message, self.clock.now_ns()))

    # ------------------------------------------------------------ API control

    def lease_view(self) -> dict[str, Any]:
        now = self.advance()
        remaining = self.node.lease_remaining_ns(now)
        view: dict[str, Any] = {
            "leader": remaining > 0,
            "term": self.node.term,
            "lease_remaining_ns": remaining,
        }
        if self._grant is not None and self._grant[0] == self.node.term:
            view["token"] = self._grant[0] * GRANTS_PER_TERM + self._grant[1]
        return view

    def _grant_token(self, client: str | None) -> int:
        """A fencing token for this campaign: unique per grant, increasing. The same
        client asking again in the same term keeps its token; any other caller (a new
        candidate process after a crash, or an anonymous one) gets the next one, so two
        processes never share a token and the newer grant fences the older."""
        term = self.node.term
        grant = self._grant
        if grant is not None and grant[0] == term:
            if client is not None and grant[2] == client:
                return term * GRANTS_PER_TERM + grant[1]
            number = grant[1] + 1
        else:
            number = 0
        if number >= GRANTS_PER_TERM:
            raise RuntimeError(f"more than {GRANTS_PER_TERM} grants in term {term}")
        self._grant = (term, number, client)
        return term * GRANTS_PER_TERM + number

    def status_view(self) -> dict[str, Any]:
        self.advance()
        return self.node.status()

    def resign(self, backoff_s: float | None) -> dict[str, Any]:
        if backoff_s is None:
            backoff_ns = self.config.resign_backoff_ms * 1_000_000
        else:
            backoff_ns = int(backoff_s * 1e9)
        self._dispatch(self.node.resign(self.clock.now_ns(), backoff_ns))
        return {"ok": True, "term": self.node.term}

    async def campaign(self, timeout_s: float, client: str | None = None) -> dict[str, Any]:
        # The wait is the client's patience, not a protocol timer: real time is right here.
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_s
        while True:
            view = self.lease_view()
            if view["leader"]:
                return {
                    "leader": True,
                    "token": self._grant_token(client),
                    "term": view["term"],
                    "lease_remaining_ns": view["lease_remaining_ns"],
                }
            if loop.time() >= give_up:
                return {"leader": False, "term": view["term"]}
            await asyncio.sleep(min(self.config.tick_ms / 1000, max(0.0, give_up - loop.time())))

    # ------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        await self.transport.start()
        await self.api.start(*self.api_address)
        self._log.info("serving peers and API on %s:%d", *self.api_address)
        tick_s = self.config.tick_ms / 1000
        try:
            while not stop.is_set():
                self.advance()
                await asyncio.sleep(tick_s)
        finally:
            self._log.info("shutting down in term %d as %s", self.node.term, self.node.role)
            await self.api.stop()
            await self.transport.stop()
