"""One ordered pass over a history: pairs operations, checks structure, builds beliefs.

The pass orders events by (time, file line) with a stable sort, which is the order
shared/HISTORY.md prescribes ((time, index, file line): indexes, where present, increase
with the line, so they never reorder equal times). It reports malformed input (a
completion with no open invoke, a second invoke while one is open, values of the wrong
shape) and collects what the rules judge: belief intervals, acquisitions, applied
writes and status observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from harness.history.events import NEMESIS, Event, Problem
from harness.history.reader import index_problems

Process = str | int


@dataclass(slots=True)
class Belief:
    """A process believes it leads `election` from `start` (its acquire ok) until `end`."""

    election: str
    process: Process
    token: int
    start: int
    end: int = -1
    ended_by: str = "end of history"
    # The events that bound it (the acquire ok; the release/lost/crash/acquire that ended
    # it, None at the end of the history): violations cite them as proof.
    start_event: Event | None = None
    end_event: Event | None = None


@dataclass(slots=True)
class Acquisition:
    election: str
    process: Process
    token: int
    invoke_position: int
    invoke_time: int
    position: int  # of the ok, in the ordered history
    time: int  # of the ok
    line: int
    invoke_event: Event | None = None
    event: Event | None = None  # the ok


@dataclass(slots=True)
class AppliedWrite:
    election: str
    process: Process
    token: int
    seq: Any
    invoke_position: int
    invoke_time: int
    applied_at: int | None
    time: int  # of the ok
    line: int
    invoke_event: Event | None = None
    event: Event | None = None  # the ok


@dataclass(slots=True)
class Status:
    time: int
    node: Any
    leader: Any
    term: int
    line: int
    event: Event | None = None


@dataclass(slots=True)
class Walk:
    """Everything the rules and stats need from one history."""

    start_time: int = 0
    end_time: int = 0
    beliefs: dict[str, list[Belief]] = field(default_factory=dict)
    acquisitions: dict[str, list[Acquisition]] = field(default_factory=dict)
    # max token among acquisitions ordered before each acquisition's invoke, per election
    writes: dict[str, list[AppliedWrite]] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    has_acquire: bool = False
    writes_failed: int = 0
    writes_indeterminate: int = 0
    nemesis_events: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class _Open:
    event: Event
    position: int


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_name(value: Any) -> bool:
    return type(value) is str or type(value) is int


def walk(events: Sequence[Event], source: str | None = None) -> Walk:
    """Order `events` and walk them once; `problems` lists every malformation found."""
    out = Walk()
    problems = out.problems
    problems.extend(index_problems(events, source))
    ordered = sorted(events, key=attrgetter("time"))  # stable: ties keep file order
    if ordered:
        out.start_time = ordered[0].time
        out.end_time = ordered[-1].time

    def bad(event: Event, message: str) -> None:
        problems.append(Problem(event.line or None, message, source))

    last_event: dict[Process, Event] = {}
    open_ops: dict[Process, _Open] = {}
    # (election, process) -> the belief in force, if any
    believing: dict[tuple[str, Process], Belief] = {}
    beliefs_of: dict[Process, set[str]] = {}

    def end_belief(election: str, process: Process, e: Event, why: str) -> None:
        belief = believing.pop((election, process), None)
        if belief is not None:
            belief.end = e.time
            belief.ended_by = why
            belief.end_event = e
            beliefs_of[process].discard(election)

    for position, e in enumerate(ordered):
        p = e.process
        previous = last_event.get(p)
        if previous is not None and previous.time == e.time:
            bad(
                e,
                f"process {p!r} has two events at time {e.time} (lines {previous.line} "
                f"and {e.line}); events of one process must be strictly ordered in time",
            )
        last_event[p] = e
        f = e.f
        etype = e.type

        if p == NEMESIS:
            out.nemesis_events += 1
            continue

        if f == "status":
            if etype != "ok":
                bad(e, f'a status observation must have type "ok", not {etype!r}')
                continue
            v = e.value
            if v is None or not _is_name(v.get("node")) or not _is_int(v.get("term")):
                bad(e, "status needs value {node: name, leader: name or null, term: integer}")
                continue
            if "leader" not in v or not (v["leader"] is None or _is_name(v["leader"])):
                bad(e, "status value.leader must be a name or null (null: no leader known)")
                continue
            out.statuses.append(Status(e.time, v["node"], v["leader"], v["term"], e.line, e))
            continue

        if f == "lost" or f == "crash":
            if etype != "info":
                bad(e, f'{f!r} is an observation and must have type "info", not {etype!r}')
                continue
            if f == "lost":
                end_belief(e.election, p, e, "lost")
            else:
                # A crashed process holds nothing in any election, and its operation
                # in flight will never complete.
                for election in list(beliefs_of.get(p, ())):
                    end_belief(election, p, e, "crash")
                open_ops.pop(p, None)
            continue

        if etype == "invoke":
            current = open_ops.get(p)
            if current is not None:
                bad(
                    e,
                    f"second invoke by process {p!r} while its {current.event.f!r} invoked "
                    f"at line {current.event.line} is still open",
                )
                continue
            if f == "write":
                v = e.value
                if v is None or not _is_int(v.get("token")):
                    bad(e, "write invoke needs value.token (integer)")
                    continue
            open_ops[p] = _Open(e, position)
            if f == "acquire":
                out.has_acquire = True
                end_belief(e.election, p, e, "acquire")
            elif f == "release":
                end_belief(e.election, p, e, "release")
            continue

        # a completion: ok, fail or info
        current = open_ops.get(p)
        if current is None or current.event.f != f:
            if etype == "info" and f not in _PAIRED:
                continue  # a one-off event of an operation the rules do not know
            if current is None:
                bad(e, f"{etype} {f!r} by process {p!r} completes no open invoke")
            else:
                bad(
                    e,
                    f"{etype} {f!r} by process {p!r} does not match its open "
                    f"{current.event.f!r} invoke at line {current.event.line}",
                )
            continue
        invoke = current.event
        if invoke.election != e.election:
            bad(
                e,
                f"completion is in election {e.election!r} but its invoke at line "
                f"{invoke.line} is in {invoke.election!r}",
            )
            continue
        del open_ops[p]
        if f == "acquire":
            if etype == "ok":
                v = e.value
                if v is None or not _is_int(v.get("token")):
                    bad(e, "acquire ok needs value.token (integer): the fencing token")
                    continue
                token = v["token"]
                out.acquisitions.setdefault(e.election, []).append(
                    Acquisition(
                        e.election,
                        p,
                        token,
                        current.position,
                        invoke.time,
                        position,
                        e.time,
                        e.line,
                        invoke,
                        e,
                    )
                )
                belief = Belief(e.election, p, token, e.time, -1, "end of history", e)
                believing[(e.election, p)] = belief
                beliefs_of.setdefault(p, set()).add(e.election)
                out.beliefs.setdefault(e.election, []).append(belief)
        elif f == "write":
            if etype == "ok":
                v = e.value
                applied_at = None if v is None else v.get("applied_at")
                if applied_at is not None and not _is_int(applied_at):
                    bad(e, "write ok value.applied_at must be an integer (ns) when present")
                    continue
                iv = invoke.value or {}
                out.writes.setdefault(e.election, []).append(
                    AppliedWrite(
                        e.election,
                        p,
                        iv["token"],
                        iv.get("seq"),
                        current.position,
                        invoke.time,
                        applied_at,
                        e.time,
                        e.line,
                        invoke,
                        e,
                    )
                )
            elif etype == "fail":
                out.writes_failed += 1
            else:
                out.writes_indeterminate += 1

    for belief in believing.values():
        belief.end = out.end_time
    return out


_PAIRED = frozenset({"acquire", "release", "write"})
