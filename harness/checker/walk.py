"""One ordered pass over a history: pairs operations, checks structure, builds beliefs.

The pass orders events by (time, file line) with a stable sort, which is the order
docs/HISTORY.md prescribes ((time, index, file line): indexes, where present, increase
with the line, so they never reorder equal times). It reports malformed input (a
completion with no open invoke, a second invoke while one is open, values of the wrong
shape) and collects what the rules judge: belief intervals, acquisitions, applied
writes and status observations.

The pass is a `Walker`: a small state object fed one event at a time in that order, each
event going to one named handler for its operation (a dispatch table below). Feeding
events one at a time lets `harness.checker.check_file` walk a time-sorted file while it
reads it, without holding the history's events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
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


# The open invoke of a process, and its position in the ordered history.
_Open = tuple[Event, int]


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_name(value: Any) -> bool:
    return type(value) is str or type(value) is int


class Walker:
    """The state of one pass: fed events in (time, line) order, then `finish`ed.

    Each event goes to the handler of its operation (`_HANDLERS`, by `f`); handlers of
    operations that pair an invoke with its completion use `begin` and `complete`.
    """

    __slots__ = (
        "beliefs_of",
        "believing",
        "last_event",
        "last_time",
        "open_ops",
        "out",
        "position",
        "source",
    )

    def __init__(self, source: str | None = None) -> None:
        self.out = Walk()
        self.source = source
        self.position = 0  # of the next event in the ordered history
        self.last_time: int | None = None
        self.last_event: dict[Process, Event] = {}
        self.open_ops: dict[Process, _Open] = {}
        # (election, process) -> the belief in force, if any
        self.believing: dict[tuple[str, Process], Belief] = {}
        self.beliefs_of: dict[Process, set[str]] = {}

    def bad(self, event: Event, message: str) -> None:
        self.out.problems.append(Problem(event.line or None, message, self.source))

    def feed(self, events: Iterable[Event], *, stop_if_unsorted: bool = False) -> bool:
        """Walk `events`, which must come in (time, line) order. With `stop_if_unsorted`,
        stop at the first event earlier than the one before it and return False (the
        caller then sorts the whole history and starts again); otherwise return True."""
        last_event = self.last_event
        handlers = _HANDLERS
        other = _on_other
        bad = self.bad
        out = self.out
        it = iter(events)
        last_time = self.last_time
        if last_time is None:
            first = next(it, None)
            if first is None:
                return True
            out.start_time = last_time = first.time
            it = chain((first,), it)
        # The loop below runs once per event of a million-event history: everything it
        # needs is a local, and the per-event work is one handler call.
        position = self.position
        for e in it:
            time = e.time
            if time < last_time and stop_if_unsorted:
                self.position, self.last_time = position, last_time
                return False
            last_time = time
            self.position = position
            position += 1
            p = e.process
            previous = last_event.get(p)
            if previous is not None and previous.time == time:
                bad(
                    e,
                    f"process {p!r} has two events at time {time} (lines {previous.line} "
                    f"and {e.line}); events of one process must be strictly ordered in time",
                )
            last_event[p] = e
            if p == NEMESIS:
                out.nemesis_events += 1
                continue
            handlers.get(e.f, other)(self, e)
        self.position, self.last_time = position, last_time
        return True

    def begin(self, e: Event) -> bool:
        """Open the invoke `e`; False (reported) when its process already has one open."""
        p = e.process
        current = self.open_ops.get(p)
        if current is not None:
            self.bad(
                e,
                f"second invoke by process {p!r} while its {current[0].f!r} invoked "
                f"at line {current[0].line} is still open",
            )
            return False
        self.open_ops[p] = (e, self.position)
        return True

    def complete(self, e: Event) -> _Open | None:
        """Close the open invoke that the completion `e` completes and return it; None
        (reported) when there is none, or it is of another operation or election."""
        p = e.process
        current = self.open_ops.get(p)
        if current is None:
            self.bad(e, f"{e.type} {e.f!r} by process {p!r} completes no open invoke")
            return None
        invoke = current[0]
        if invoke.f != e.f:
            self.bad(
                e,
                f"{e.type} {e.f!r} by process {p!r} does not match its open "
                f"{invoke.f!r} invoke at line {invoke.line}",
            )
            return None
        if invoke.election != e.election:
            self.bad(
                e,
                f"completion is in election {e.election!r} but its invoke at line "
                f"{invoke.line} is in {invoke.election!r}",
            )
            return None
        del self.open_ops[p]
        return current

    def end_belief(self, election: str, process: Process, e: Event, why: str) -> None:
        belief = self.believing.pop((election, process), None)
        if belief is not None:
            belief.end = e.time
            belief.ended_by = why
            belief.end_event = e
            self.beliefs_of[process].discard(election)

    def finish(self) -> Walk:
        """The walk's result: beliefs still in force end at the history's last event."""
        out = self.out
        if self.last_time is not None:
            out.end_time = self.last_time
        for belief in self.believing.values():
            belief.end = out.end_time
        return out


def walk(events: Iterable[Event], source: str | None = None) -> Walk:
    """Order `events` and walk them once; `problems` lists every malformation found."""
    events = events if isinstance(events, list | tuple) else list(events)
    walker = Walker(source)
    walker.out.problems.extend(index_problems(events, source))
    walker.feed(sorted(events, key=attrgetter("time")))  # stable: ties keep file order
    return walker.finish()


# --- handlers: one per operation ------------------------------------------------------


def _on_status(w: Walker, e: Event) -> None:
    """A `status` observation: member `node` said `leader` leads `term`."""
    if e.type != "ok":
        w.bad(e, f'a status observation must have type "ok", not {e.type!r}')
        return
    v = e.value
    if v is None or not _is_name(v.get("node")) or not _is_int(v.get("term")):
        w.bad(e, "status needs value {node: name, leader: name or null, term: integer}")
        return
    if "leader" not in v or not (v["leader"] is None or _is_name(v["leader"])):
        w.bad(e, "status value.leader must be a name or null (null: no leader known)")
        return
    w.out.statuses.append(Status(e.time, v["node"], v["leader"], v["term"], e.line, e))


def _on_lost(w: Walker, e: Event) -> None:
    """The process noticed it no longer leads this election."""
    if e.type != "info":
        w.bad(e, f"'lost' is an observation and must have type \"info\", not {e.type!r}")
        return
    w.end_belief(e.election, e.process, e, "lost")


def _on_crash(w: Walker, e: Event) -> None:
    """A crashed process holds nothing in any election, and its operation in flight
    will never complete."""
    if e.type != "info":
        w.bad(e, f"'crash' is an observation and must have type \"info\", not {e.type!r}")
        return
    p = e.process
    for election in list(w.beliefs_of.get(p, ())):
        w.end_belief(election, p, e, "crash")
    w.open_ops.pop(p, None)


def _on_acquire(w: Walker, e: Event) -> None:
    """Campaigning ends the process's belief in that election; an ok starts a new one
    with its fencing token; fail and info leave the process without one."""
    if e.type == "invoke":
        if w.begin(e):
            w.out.has_acquire = True
            w.end_belief(e.election, e.process, e, "acquire")
        return
    current = w.complete(e)
    if current is None or e.type != "ok":
        return
    v = e.value
    if v is None or not _is_int(v.get("token")):
        w.bad(e, "acquire ok needs value.token (integer): the fencing token")
        return
    token = v["token"]
    election = e.election
    p = e.process
    out = w.out
    invoke, invoke_position = current
    acquisition = Acquisition(
        election, p, token, invoke_position, invoke.time, w.position, e.time, e.line, invoke, e
    )
    out.acquisitions.setdefault(election, []).append(acquisition)
    belief = Belief(election, p, token, e.time, -1, "end of history", e)
    w.believing[(election, p)] = belief
    w.beliefs_of.setdefault(p, set()).add(election)
    out.beliefs.setdefault(election, []).append(belief)


def _on_release(w: Walker, e: Event) -> None:
    """The process stops acting as leader when it invokes release."""
    if e.type == "invoke":
        if w.begin(e):
            w.end_belief(e.election, e.process, e, "release")
        return
    w.complete(e)


def _on_write(w: Walker, e: Event) -> None:
    """A write invoke carries the writer's token; an ok is kept for the stale-write
    rule, fail and info are counted. The most frequent operation: its checks are
    written out here rather than through `begin` and `complete`."""
    p = e.process
    if e.type == "invoke":
        if p in w.open_ops:
            w.begin(e)  # reports the second invoke
            return
        v = e.value
        if v is None or type(v.get("token")) is not int:
            w.bad(e, "write invoke needs value.token (integer)")
            return
        w.open_ops[p] = (e, w.position)
        return
    current = w.open_ops.get(p)
    if current is None or current[0].f != "write" or current[0].election != e.election:
        w.complete(e)  # reports what is wrong
        return
    del w.open_ops[p]
    etype = e.type
    if etype == "fail":
        w.out.writes_failed += 1
        return
    if etype != "ok":
        w.out.writes_indeterminate += 1
        return
    v = e.value
    applied_at = None if v is None else v.get("applied_at")
    if applied_at is not None and type(applied_at) is not int:
        w.bad(e, "write ok value.applied_at must be an integer (ns) when present")
        return
    invoke, invoke_position = current
    iv = invoke.value or {}
    w.out.writes.setdefault(e.election, []).append(
        AppliedWrite(
            e.election,
            p,
            iv["token"],
            iv.get("seq"),
            invoke_position,
            invoke.time,
            applied_at,
            e.time,
            e.line,
            invoke,
            e,
        )
    )


def _on_other(w: Walker, e: Event) -> None:
    """An operation the rules do not know: its invokes and completions still pair (a
    process has one operation in flight), and a lone `info` is a one-off event."""
    if e.type == "invoke":
        w.begin(e)
        return
    current = w.open_ops.get(e.process)
    if e.type == "info" and (current is None or current[0].f != e.f):
        return
    w.complete(e)


Handler = Callable[[Walker, Event], None]

# One handler per operation (`f`); any other operation goes to `_on_other`.
_HANDLERS: dict[str, Handler] = {
    "status": _on_status,
    "lost": _on_lost,
    "crash": _on_crash,
    "acquire": _on_acquire,
    "release": _on_release,
    "write": _on_write,
}
