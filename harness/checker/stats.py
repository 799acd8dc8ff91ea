"""Statistics of a history: acquisitions, leaderless time and failover latencies.

Leaderless time is the part of the history's span (first to last event) in which no
process believes it leads. A failover latency is, for each leadership that ended before
the end of the history, the time from its end until the ok of the next acquisition
(after its own) in the same election, or 0 when that ok came before the end (another
process already led: a handover, or a split brain that the rules report); those are also
counted as `overlapped`, so that they read as overlaps rather than as instant failovers.
Leaderships followed by no acquisition are counted as `unrecovered`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from harness.checker.types import ElectionStats, FailoverSummary, Stats

if TYPE_CHECKING:  # the checker's own pass needs `percentile` only, not the walk
    from harness.checker.walk import Belief, Walk


def percentile(sorted_values: list[int], p: float) -> int | None:
    """Nearest-rank percentile of an ascending list; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def covered_ns(beliefs: Iterable[Belief], start: int, end: int) -> int:
    """Length of the union of belief intervals, clipped to [start, end]."""
    total = 0
    reach = start
    for b in sorted(beliefs, key=lambda b: b.start):
        lo = max(b.start, reach)
        hi = min(b.end, end)
        if hi > lo:
            total += hi - lo
            reach = hi
    return total


def failover_latencies(w: Walk, election: str) -> tuple[list[int], int]:
    """Latencies (ns) of the leaderships that ended, and how many were never followed."""
    latencies, unrecovered, _ = _failovers(w, election)
    return latencies, unrecovered


def _failovers(w: Walk, election: str) -> tuple[list[int], int, int]:
    """Latencies (ns), how many leaderships were never followed, and how many were
    followed by an acquisition that came before they ended (latency counted as 0)."""
    # Beliefs and acquisitions are made together, one per acquire ok, in ok order.
    acquisitions = w.acquisitions.get(election, [])
    latencies: list[int] = []
    unrecovered = overlapped = 0
    for i, b in enumerate(w.beliefs.get(election, [])):
        if b.ended_by == "end of history":
            continue
        if i + 1 == len(acquisitions):
            unrecovered += 1
            continue
        latency = acquisitions[i + 1].time - b.end
        if latency < 0:
            overlapped += 1
        latencies.append(max(0, latency))
    return latencies, unrecovered, overlapped


def _latency_summary(latencies: list[int], unrecovered: int, overlapped: int) -> FailoverSummary:
    ordered = sorted(latencies)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
        "unrecovered": unrecovered,
        "overlapped": overlapped,
    }


def compute_stats(w: Walk) -> Stats:
    span = w.end_time - w.start_time
    elections = sorted(set(w.beliefs) | set(w.acquisitions))
    all_latencies: list[int] = []
    all_unrecovered = all_overlapped = 0
    per_election: dict[str, ElectionStats] = {}
    for election in elections:
        latencies, unrecovered, overlapped = _failovers(w, election)
        all_latencies.extend(latencies)
        all_unrecovered += unrecovered
        all_overlapped += overlapped
        beliefs = w.beliefs.get(election, [])
        per_election[election] = {
            "acquisitions": len(w.acquisitions.get(election, [])),
            "leaderless_ns": span - covered_ns(beliefs, w.start_time, w.end_time),
            "failover_ns": _latency_summary(latencies, unrecovered, overlapped),
        }
    every_belief = [b for beliefs in w.beliefs.values() for b in beliefs]
    return {
        "acquisitions": sum(len(a) for a in w.acquisitions.values()),
        "leaderless_ns": span - covered_ns(every_belief, w.start_time, w.end_time),
        "failover_ns": _latency_summary(all_latencies, all_unrecovered, all_overlapped),
        "span_ns": span,
        "writes_applied": sum(len(ws) for ws in w.writes.values()),
        "writes_failed": w.writes_failed,
        "writes_indeterminate": w.writes_indeterminate,
        "status_observations": len(w.statuses),
        "nemesis_events": w.nemesis_events,
        "elections": per_election,
    }
