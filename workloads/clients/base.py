"""The candidate's view of an election system: campaign, check, resign.

An `ElectionClient` is what a candidate process uses to talk to its member. Each target
provides one (the reference elector's local API, etcd's v3election, Consul's sessions).
`campaign` returning None means definitely not leader; `ClientError` means the outcome
is unknown (timeout, connection refused), which the history records as `info`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from harness.errors import HarnessError


class ClientError(HarnessError, RuntimeError):
    """The system did not answer, or answered something unusable: outcome unknown."""


@dataclass(frozen=True)
class Grant:
    """Leadership won: the fencing token, and how long the lease lasts from when the
    request was sent (None if the system gives no bound)."""

    token: int
    lease_ns: int | None


@dataclass(frozen=True)
class LeaseState:
    """ "Am I still leader, until when": `remaining_ns` counts from when the request was sent."""

    leader: bool
    token: int | None
    remaining_ns: int | None


class ElectionClient(Protocol):
    def campaign(self, timeout_s: float) -> Grant | None: ...

    def check(self) -> LeaseState: ...

    def resign(self) -> None: ...

    def close(self) -> None: ...


class Renewer:
    """Calls `renew` every `interval_s` from a daemon thread until stopped, or until it
    answers False (the lease or session is gone); a ClientError (no answer) is retried
    at the next interval, leaving the lease's end where it was. The thread freezes with
    the process under SIGSTOP: a paused candidate's lease expires, which is what pause
    faults are for."""

    def __init__(self, renew: Callable[[], bool], interval_s: float, name: str) -> None:
        self._renew = renew
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                alive = self._renew()
            except ClientError:
                continue
            if not alive:
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
