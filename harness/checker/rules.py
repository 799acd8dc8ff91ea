"""The six violation kinds of docs/HISTORY.md, each a function of one `Walk`: the
reference implementation of the rules.

The checker itself (`harness.checker.check`, `check_file`) judges in one streaming pass
(`harness.checker.stream`) that holds no history; these in-memory functions, written
the plain way, are what the differential tests compare it with (`reference_verdict`).

Every function returns violations as dicts with `kind`, `election` (None for the two
server-level kinds), `processes`, `start`, `end`, `detail` and `events`: the events that
prove it, each as in the history with its file `line` (so a report can show them). Each is linear or
n log n in the number of events it reads, apart from reporting itself. Details give
instants as seconds from the run's start and durations in s/ms/ns (`harness.checker.units`);
`start` and `end` stay in nanoseconds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from harness.checker.stats import compute_stats
from harness.checker.stream import VIOLATION_KINDS
from harness.checker.types import Verdict, Violation
from harness.checker.units import duration, seconds
from harness.checker.walk import Acquisition, Belief, Status, Walk
from harness.history.events import Event, MalformedHistory

T = TypeVar("T")


def _violation(
    kind: str,
    election: str | None,
    processes: list[Any],
    start: int,
    end: int,
    detail: str,
    proof: list[Event | None],
) -> Violation:
    return {
        "kind": kind,
        "election": election,
        "processes": processes,
        "start": start,
        "end": end,
        "detail": detail,
        "events": _cite(proof),
    }


def _cite(proof: list[Event | None]) -> list[dict[str, Any]]:
    """The proving events in history order, each once, as in the file plus its line."""
    seen: set[int] = set()
    cited: list[dict[str, Any]] = []
    for e in sorted((e for e in proof if e is not None), key=lambda e: (e.time, e.line)):
        if id(e) not in seen:
            seen.add(id(e))
            cited.append({"line": e.line or None, **e.to_dict()})
    return cited


def split_brain(w: Walk, tolerance_ns: int) -> list[Violation]:
    """Belief intervals of two processes in one election overlapping by > tolerance."""
    found: list[Violation] = []
    for election, beliefs in w.beliefs.items():
        active: list[Belief] = []
        # Beliefs are created in order of their acquire ok, so `start` never decreases.
        for b in beliefs:
            # An active belief that ends by b.start + tolerance cannot overlap b, nor any
            # later belief (they start no earlier), by more than the tolerance.
            active = [a for a in active if a.end - b.start > tolerance_ns]
            for a in active:
                if a.process == b.process:
                    continue
                overlap_end = min(a.end, b.end)
                if overlap_end - b.start > tolerance_ns:
                    found.append(
                        _violation(
                            "split-brain",
                            election,
                            [a.process, b.process],
                            b.start,
                            overlap_end,
                            f"{a.process!r} (token {a.token}, leader from {seconds(a.start)} "
                            f"until {seconds(a.end)}, ended by {a.ended_by}) and "
                            f"{b.process!r} (token {b.token}, leader from "
                            f"{seconds(b.start)} until {seconds(b.end)}, ended by "
                            f"{b.ended_by}) both believed they led for "
                            f"{duration(overlap_end - b.start)}",
                            [a.start_event, a.end_event, b.start_event, b.end_event],
                        )
                    )
            active.append(b)
    return found


def duplicate_token(w: Walk) -> list[Violation]:
    """Two different processes granted the same token: one violation per token."""
    found: list[Violation] = []
    for election, acquisitions in w.acquisitions.items():
        by_token: dict[int, list[Acquisition]] = {}
        for a in acquisitions:
            by_token.setdefault(a.token, []).append(a)
        for token, grants in by_token.items():
            processes: list[Any] = []
            for g in grants:
                if g.process not in processes:
                    processes.append(g.process)
            if len(processes) < 2:
                continue
            found.append(
                _violation(
                    "duplicate-token",
                    election,
                    processes,
                    grants[0].time,
                    grants[-1].time,
                    f"token {token} was granted to {len(processes)} processes: "
                    + ", ".join(f"{g.process!r} at {seconds(g.time)}" for g in grants),
                    [g.event for g in grants],
                )
            )
    return found


def token_regression(w: Walk) -> list[Violation]:
    """An acquisition invoked after another's ok that received a smaller token."""
    found: list[Violation] = []
    for election, acquisitions in w.acquisitions.items():
        # Walk oks in history order; for each acquisition, the highest earlier ok that
        # came before its invoke is the prefix maximum at the invoke's position.
        positions = [a.position for a in acquisitions]
        prefix_best: list[Acquisition] = []
        best: Acquisition | None = None
        for a in acquisitions:
            if best is None or a.token > best.token:
                best = a
            prefix_best.append(best)
        for a in acquisitions:
            earlier = bisect_left(positions, a.invoke_position)
            if earlier == 0:
                continue
            top = prefix_best[earlier - 1]
            if a.token < top.token:
                processes = [a.process] if top.process == a.process else [a.process, top.process]
                found.append(
                    _violation(
                        "token-regression",
                        election,
                        processes,
                        top.time,
                        a.time,
                        f"{a.process!r} invoked acquire at {seconds(a.invoke_time)}, after "
                        f"{top.process!r} had acquired token {top.token} at "
                        f"{seconds(top.time)}, and received the smaller token {a.token} "
                        f"at {seconds(a.time)}",
                        [top.event, a.invoke_event, a.event],
                    )
                )
    return found


class _TopTwo(Generic[T]):
    """Running maxima by distinct owner: the best item so far, and the best item of an
    owner other than the best's. Enough to answer "the best of anyone but X" for any X."""

    __slots__ = ("_owner", "_value", "first", "second")

    def __init__(self, value: Callable[[T], int], owner: Callable[[T], Any]) -> None:
        self._value = value
        self._owner = owner
        self.first: T | None = None
        self.second: T | None = None

    def add(self, item: T) -> None:
        value, owner = self._value, self._owner
        first, second = self.first, self.second
        if first is None or value(item) > value(first):
            if first is not None and owner(first) != owner(item):
                self.second = first
            self.first = item
        elif owner(item) != owner(first) and (second is None or value(item) > value(second)):
            self.second = item

    def copy(self) -> _TopTwo[T]:
        twin = _TopTwo(self._value, self._owner)
        twin.first, twin.second = self.first, self.second
        return twin

    def best_other_than(self, owner: Any) -> T | None:
        if self.first is not None and self._owner(self.first) != owner:
            return self.first
        return self.second


def stale_write(w: Walk) -> list[Violation]:
    """A write applied although another process had acquired a greater token before."""
    found: list[Violation] = []
    for election, writes in w.writes.items():
        acquisitions = w.acquisitions.get(election, [])
        times = [a.time for a in acquisitions]
        positions = [a.position for a in acquisitions]
        snapshots: list[_TopTwo[Acquisition]] = []
        top: _TopTwo[Acquisition] = _TopTwo(lambda a: a.token, lambda a: a.process)
        for a in acquisitions:
            top.add(a)
            snapshots.append(top.copy())
        for wr in writes:
            if wr.applied_at is not None:
                count = bisect_left(times, wr.applied_at)  # oks strictly before applied_at
                when = f"before it was applied at {seconds(wr.applied_at)}"
            else:
                count = bisect_left(positions, wr.invoke_position)  # oks before the invoke
                when = f"before the write was invoked at {seconds(wr.invoke_time)}"
            if count == 0:
                continue
            other = snapshots[count - 1].best_other_than(wr.process)
            if other is None or other.token <= wr.token:
                continue
            found.append(
                _violation(
                    "stale-write",
                    election,
                    [wr.process, other.process],
                    other.time,
                    max(other.time, wr.applied_at if wr.applied_at is not None else wr.time),
                    f"write seq {wr.seq!r} with token {wr.token} by {wr.process!r} was applied "
                    f"(ok at {seconds(wr.time)}) although {other.process!r} had "
                    f"acquired token {other.token} at {seconds(other.time)}, {when}",
                    [other.event, wr.invoke_event, wr.event],
                )
            )
    return found


def term_split_brain(w: Walk) -> list[Violation]:
    """Status observations naming two different leaders for one term."""
    found: list[Violation] = []
    leaders_by_term: dict[int, dict[Any, Status]] = {}
    for s in sorted(w.statuses, key=lambda s: s.time):
        if s.leader is None:
            continue
        leaders_by_term.setdefault(s.term, {}).setdefault(s.leader, s)
    for term, leaders in sorted(leaders_by_term.items()):
        if len(leaders) < 2:
            continue
        firsts = list(leaders.values())
        found.append(
            _violation(
                "term-split-brain",
                None,
                list(leaders),
                firsts[0].time,
                firsts[-1].time,
                f"term {term} has {len(leaders)} leaders: "
                + ", ".join(
                    f"{s.leader!r} (first named by {s.node!r} at {seconds(s.time)})" for s in firsts
                ),
                [s.event for s in firsts],
            )
        )
    return found


def stale_leader(w: Walk, grace_ns: int) -> list[Violation]:
    """A member calling itself leader of T after another leader of a higher term was
    observed more than `grace_ns` earlier. One violation per (member, term)."""
    statuses = sorted(w.statuses, key=lambda s: s.time)
    named = [s for s in statuses if s.leader is not None]
    seen: _TopTwo[Status] = _TopTwo(lambda o: o.term, lambda o: o.leader)
    i = 0
    stale: dict[tuple[Any, int], tuple[Status, Status, Status]] = {}
    for s in statuses:
        if s.leader is None or s.leader != s.node:
            continue
        while i < len(named) and s.time - named[i].time > grace_ns:
            seen.add(named[i])
            i += 1
        higher = seen.best_other_than(s.node)
        if higher is None or higher.term <= s.term:
            continue
        key = (s.node, s.term)
        if key in stale:
            first, _, witness = stale[key]
            stale[key] = (first, s, witness)
        else:
            stale[key] = (s, s, higher)
    found: list[Violation] = []
    for (node, term), (first, last, witness) in stale.items():
        found.append(
            _violation(
                "stale-leader",
                None,
                [node, witness.leader],  # the witness names a leader other than node
                first.time,
                last.time,
                f"{node!r} reported itself leader of term {term} from {seconds(first.time)} "
                f"to {seconds(last.time)}, although {witness.node!r} had named "
                f"{witness.leader!r} leader of the higher term {witness.term} at "
                f"{seconds(witness.time)} (grace {duration(grace_ns)})",
                [first.event, last.event, witness.event],
            )
        )
    return found


def reference_verdict(w: Walk, tolerance_ns: int = 0, stale_grace_ns: int = 0) -> Verdict:
    """The verdict of a walked history by the rules above (raises MalformedHistory as
    the checker does): the oracle of the streaming checker's differential tests."""
    if w.problems:
        w.problems.sort(key=lambda p: p.line or 0)
        raise MalformedHistory(w.problems)
    violations = (
        split_brain(w, tolerance_ns)
        + duplicate_token(w)
        + token_regression(w)
        + stale_write(w)
        + term_split_brain(w)
        + stale_leader(w, stale_grace_ns)
    )
    violations.sort(key=lambda v: (v["start"], VIOLATION_KINDS.index(v["kind"])))
    valid: bool | Literal["unknown"] = (
        "unknown" if not w.has_acquire and not w.statuses else not violations
    )
    return {
        "valid": valid,
        "violations": violations,
        "stats": compute_stats(w),
        "settings": {"tolerance_ns": tolerance_ns, "stale_grace_ns": stale_grace_ns},
    }
