"""The status probe: polls every member's own view (leader, term) and records `status`.

One thread per node, so a paused or cut-off member delays nobody else; each node's
observations are their own history process (`probe-n1`), strictly ordered in time.
A bad answer (the target's probe raised) is recorded as an `info` `status-error` event,
which the checker's rules ignore, and logged; the thread keeps probing, so one garbled
reply cannot silently end the observations of a node for the rest of the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from harness.backends.base import Node
from harness.recorder import Recorder
from harness.targets.base import MemberView, Target
from harness.wait import wait_until

log = logging.getLogger(__name__)


class StatusProbe:
    def __init__(
        self, target: Target, nodes: Sequence[Node], recorder: Recorder, interval_s: float
    ) -> None:
        self._target = target
        self._nodes = list(nodes)
        self._rec = recorder
        self._interval = interval_s
        self._stop = threading.Event()
        self._latest: dict[str, tuple[float, MemberView]] = {}
        self._lock = threading.Lock()
        self.errors: dict[str, int] = {node.name: 0 for node in self._nodes}
        self._threads = [
            threading.Thread(
                target=self._poll, args=(node,), name=f"probe-{node.name}", daemon=True
            )
            for node in self._nodes
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _poll(self, node: Node) -> None:
        timeout = max(0.2, min(1.0, self._interval * 3))
        while not self._stop.is_set():
            started = time.monotonic()
            view = self._probe_once(node, timeout)
            if view is not None and not self._stop.is_set():
                self._rec.record(
                    f"probe-{node.name}",
                    "ok",
                    "status",
                    {"node": view.node, "leader": view.leader, "term": view.term},
                    node=node.name,
                )
                with self._lock:
                    self._latest[node.name] = (time.monotonic(), view)
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def _probe_once(self, node: Node, timeout: float) -> MemberView | None:
        try:
            return self._target.probe(node, timeout)
        except Exception as exc:  # a bad answer: recorded, and the next poll goes ahead
            with self._lock:
                self.errors[node.name] += 1
                count = self.errors[node.name]
            error = f"{type(exc).__name__}: {exc}"[:300]
            if not self._stop.is_set():
                self._rec.record(
                    f"probe-{node.name}",
                    "info",
                    "status-error",
                    {"node": node.name, "error": error},
                    node=node.name,
                )
            # The first few in full; after that a line now and then, not one per poll.
            if count <= 3 or count % 100 == 0:
                log.warning("probe of %s: bad answer #%d: %s", node.name, count, error)
            return None

    def leader(self, max_age_s: float = 1.0) -> str | None:
        """The leader a majority of members named recently, in the highest such term."""
        now = time.monotonic()
        with self._lock:
            views = [v for at, v in self._latest.values() if now - at <= max_age_s]
        votes: dict[tuple[int, str], int] = {}
        for view in views:
            if view.leader is not None:
                key = (view.term, view.leader)
                votes[key] = votes.get(key, 0) + 1
        majority = len(self._nodes) // 2 + 1
        agreed = [key for key, count in votes.items() if count >= majority]
        return max(agreed)[1] if agreed else None

    def wait_for_leader(self, timeout_s: float) -> str:
        """The leader a majority agrees on; WaitTimeout if none within `timeout_s`."""
        return wait_until(self.leader, timeout_s, "a leader agreed by a majority", interval=0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3)
