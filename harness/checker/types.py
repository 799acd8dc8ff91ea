"""The verdict's JSON shape as types: `Verdict`, `Violation` and the statistics.

Plain dicts at run time (the verdict is written as JSON as it is, and read back from
results files), typed for mypy with TypedDicts; docs/HISTORY.md ("Verdict") is the
contract. Times and durations are integers in nanoseconds.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Process = str | int


class Violation(TypedDict):
    kind: str  # one of VIOLATION_KINDS
    election: str | None  # None for the server-level kinds (term-split-brain, stale-leader)
    processes: list[Any]  # process names; member names for the server-level kinds
    start: int
    end: int
    detail: str
    # The events that prove it, as in the history plus their file `line`.
    events: list[dict[str, Any]]


class FailoverSummary(TypedDict):
    count: int
    p50: int | None
    p99: int | None
    max: int | None
    unrecovered: int  # leaderships that ended and were never followed by an acquisition
    # Failovers whose successor acquired before the old leader let go: their latency is
    # counted as 0 ns above, and they read as overlaps, not as instant failovers.
    overlapped: int


class ElectionStats(TypedDict):
    acquisitions: int
    leaderless_ns: int
    failover_ns: FailoverSummary


class Stats(TypedDict):
    acquisitions: int
    leaderless_ns: int
    failover_ns: FailoverSummary
    span_ns: int
    writes_applied: int
    writes_failed: int
    writes_indeterminate: int
    status_observations: int
    nemesis_events: int
    elections: dict[str, ElectionStats]


class Settings(TypedDict):
    tolerance_ns: int
    stale_grace_ns: int


class Verdict(TypedDict):
    valid: bool | Literal["unknown"]
    violations: list[Violation]
    stats: Stats
    settings: Settings
