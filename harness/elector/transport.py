"""TCP links between elector nodes: one outbound connection per peer, inbound ones received.

Each node sends only on the connections it opened and reads only from the ones it
accepted, so a reply travels on the replier's own link. Sending never blocks the caller:
messages go into a small per-peer queue that a background task writes out; while a peer
is unreachable the queue is dropped (Raft tolerates lost messages and the node repeats
what matters). Connects and writes have timeouts, and a link whose peer has been silent
for a while is re-opened, because after a partition heals a connection can sit in TCP
retransmission back-off for seconds (docs/FACTS.md). These network timers use the event
loop's clock on purpose: they are not protocol timers and must keep working under skew.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections import deque
from collections.abc import Callable

from harness.elector.protocol import MAX_LINE_BYTES, Message, ProtocolError, decode

Address = tuple[str, int]

CONNECT_TIMEOUT_S = 0.5
SEND_TIMEOUT_S = 1.0
RETRY_MIN_S = 0.05
RETRY_MAX_S = 0.5
SILENT_PEER_S = 1.0
QUEUE_LIMIT = 256


def _tune(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Make unacknowledged writes fail within a second instead of after minutes.
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)
    if user_timeout is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, user_timeout, int(SEND_TIMEOUT_S * 1000))


class PeerLink:
    """The outbound connection to one peer, with its send queue and reconnect loop."""

    def __init__(
        self,
        peer_id: str,
        address: Address,
        last_heard: Callable[[], float],
        log: logging.Logger,
    ) -> None:
        self.peer_id = peer_id
        self.address = address
        self._last_heard = last_heard
        self._log = log
        self._queue: deque[bytes] = deque(maxlen=QUEUE_LIMIT)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"link-{self.peer_id}")

    async def stop(self) -> None:
        # The flag as well as the cancel: a cancel can be lost in a timeout race.
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)

    def send(self, data: bytes) -> None:
        self._queue.append(data)
        self._wake.set()

    async def _run(self) -> None:
        backoff = RETRY_MIN_S
        loop = asyncio.get_running_loop()
        while not self._closing:
            host, port = self.address
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError):
                self._queue.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            backoff = RETRY_MIN_S
            _tune(writer.get_extra_info("socket"))
            self._log.debug("connected to %s at %s:%d", self.peer_id, host, port)
            opened = loop.time()
            eof = asyncio.create_task(reader.read(1))
            try:
                while not eof.done() and not self._closing:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.1):
                            await self._wake.wait()
                    self._wake.clear()
                    while self._queue:
                        writer.write(self._queue.popleft())
                    async with asyncio.timeout(SEND_TIMEOUT_S):
                        await writer.drain()
                    silent_since = max(opened, self._last_heard())
                    if loop.time() - silent_since > SILENT_PEER_S:
                        raise ConnectionError("peer silent; reconnecting")
            except (OSError, TimeoutError, ConnectionError) as exc:
                self._log.debug("link to %s closed: %s", self.peer_id, exc)
            finally:
                eof.cancel()
                writer.close()
                writer.transport.abort()
            await asyncio.sleep(RETRY_MIN_S)


class PeerTransport:
    """Listens for peers, keeps a PeerLink to each, and hands decoded messages to a callback."""

    def __init__(
        self,
        node_id: str,
        peers: dict[str, Address],
        on_message: Callable[[Message], None],
        log: logging.Logger,
    ) -> None:
        self.node_id = node_id
        self._listen = peers[node_id]
        self._on_message = on_message
        self._log = log
        self._heard: dict[str, float] = {}
        self._links = {
            peer: PeerLink(peer, addr, functools.partial(self._last_heard, peer), log)
            for peer, addr in peers.items()
            if peer != node_id
        }
        self._server: asyncio.Server | None = None
        self._inbound: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        host, port = self._listen
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_LINE_BYTES, reuse_address=True
        )
        for link in self._links.values():
            link.start()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._inbound):
            writer.close()
        for link in self._links.values():
            await link.stop()

    def _last_heard(self, peer_id: str) -> float:
        """When (loop time) a message from `peer_id` last arrived; 0.0 if never."""
        return self._heard.get(peer_id, 0.0)

    def send(self, peer_id: str, data: bytes) -> None:
        link = self._links.get(peer_id)
        if link is not None:
            link.send(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._inbound.add(writer)
        _tune(writer.get_extra_info("socket"))
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                try:
                    message = decode(line)
                except ProtocolError as exc:
                    self._log.warning("dropping connection: bad message: %s", exc)
                    return
                self._heard[message.src] = loop.time()
                self._on_message(message)
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            self._log.debug("inbound connection closed: %s", exc)
        finally:
            self._inbound.discard(writer)
            writer.close()
