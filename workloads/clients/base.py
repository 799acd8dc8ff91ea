"""The candidate's view of an election system: campaign, check, resign.

An `ElectionClient` is what a candidate process uses to talk to its member. Each target
provides one (the reference elector's local API, etcd's v3election, Consul's sessions).
`campaign` returning None means definitely not leader; `ClientError` means the outcome
is unknown (timeout, connection refused), which the history records as `info`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ClientError(RuntimeError):
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
