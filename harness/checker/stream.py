"""The checker's one pass: events in time order in, a verdict out, holding only what the
rules still need.

A `Stream` is fed events in (time, file line) order and judges them as they come: each
of the six rules of docs/HISTORY.md and the statistics is kept as running state, so what
it holds is bounded by the beliefs in force and the operations in flight, plus what a
verdict must be able to cite later, kept compactly: one small record per acquisition
(duplicate-token and stale-write may cite any earlier grant), per (term, leader) named by
a status (term-split-brain), and one integer per failover latency. Events themselves are
not kept: a record keeps its event's file line and raw bytes, decoded again only when a
violation cites it.

Its results are identical to the in-memory rules over a `Walk` (`harness.checker.rules`,
`harness.checker.stats`), which stay the reference: the differential tests compare both
on generated histories. The bookkeeping that makes the order of violations the same
(the reference lists rules one after another, elections in first-seen order, then sorts
stably by start) is done with explicit sort keys.

Event objects are duck-typed: an `Event` (the in-memory path) or the reader's fast
decoded struct (`harness.history.reader.FastEvent`); both have `time`, `process`,
`type`, `f`, `value`, `index` and `election`.
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, Literal

import msgspec
import orjson

from harness.checker.stats import percentile
from harness.checker.types import ElectionStats, FailoverSummary, Verdict, Violation
from harness.checker.units import duration, seconds
from harness.history.events import NEMESIS, TIME_LIMIT, Event, HistoryError, Problem
from harness.history.reader import LineParser, decode_fast, line_chunks

VIOLATION_KINDS = (
    "split-brain",
    "duplicate-token",
    "token-regression",
    "stale-write",
    "term-split-brain",
    "stale-leader",
)
_KIND_ORDER = {kind: i for i, kind in enumerate(VIOLATION_KINDS)}

# Where an event is, to cite it: (time, file line, the event or its raw line).
Proof = tuple[int, int, Any]
# An acquisition: (token, process, time, line, ref) of its ok. Flat tuples: there is one
# per acquisition and per term of the history (ref None: read the line again to cite it).
Grant = tuple[int, Any, int, int, Any]
# A status observation: (time, node, leader, term, line, ref).
Seen = tuple[int, Any, Any, int, int, Any]
# The open invoke of a process: (f, line, election, time, value, ref, extra); extra is
# what its completion needs from the moment of the invoke (see the handlers).
Open = tuple[str, int, str, int, Any, Proof, Any]


def cite(
    proofs: Iterable[Proof | None], raws: dict[int, bytes], source: str | None = None
) -> list[dict[str, Any]]:
    """The proving events in history order, each once, as in the file plus its line. A
    proof's ref is its `Event`, its raw line, or None: then `raws` has its line."""
    seen: set[int] = set()
    cited: list[dict[str, Any]] = []
    for _time, line, ref in sorted((p for p in proofs if p is not None), key=lambda p: p[:2]):
        if isinstance(ref, Event):
            key = id(ref)  # events handed in memory may share lines (or have none)
            event = ref
        else:
            key = line  # one event per line of a file
            event = _event_at(ref, line, _time, raws, source)
        if key in seen:
            continue
        seen.add(key)
        cited.append({"line": line or None, **event.to_dict()})
    return cited


def _event_at(
    ref: bytes | None, line: int, time: int, raws: dict[int, bytes], source: str | None
) -> Event:
    """The event of a raw line, kept (`ref`) or read again (`raws`, checked to be the
    same event: a file written to while it was checked is an error, not a verdict)."""
    if ref is not None:
        return Event.from_dict(orjson.loads(ref), line)
    try:
        event = Event.from_dict(orjson.loads(raws[line]), line)
    except (KeyError, ValueError):  # orjson.JSONDecodeError is a ValueError
        event = None
    if event is None or event.time != time:
        where = source or "history"
        raise HistoryError(f"{where}:{line}: the history changed while it was checked")
    return event


def _proof_of(invoke: Open) -> Proof:
    return (invoke[3], invoke[1], invoke[5])


def _value_of(ref: Any) -> dict[str, Any]:
    """The `value` of a cited event as the reference reads it (decoded by orjson)."""
    if isinstance(ref, Event):
        return ref.value or {}
    return orjson.loads(ref).get("value") or {}


def _violation(
    kind: str,
    election: str | None,
    processes: list[Any],
    start: int,
    end: int,
    detail: str,
    proof: list[Proof | None],
) -> tuple[Violation, list[Proof | None]]:
    """A violation, and the proofs its `events` will cite once the verdict is made."""
    violation: Violation = {
        "kind": kind,
        "election": election,
        "processes": processes,
        "start": start,
        "end": end,
        "detail": detail,
        "events": [],
    }
    return violation, proof


class _Belief:
    """A process believes it leads from its acquire ok until `end` (while `live`, it
    still does)."""

    __slots__ = (
        "end",
        "end_proof",
        "ended_by",
        "index",
        "live",
        "pairs",
        "process",
        "start",
        "start_proof",
        "successor",
        "token",
    )

    def __init__(self, process: Any, token: int, start: int, index: int, proof: Proof) -> None:
        self.process = process
        self.token = token
        self.start = start
        self.live = True
        self.end = start  # set when it ends
        self.ended_by = "end of history"
        self.start_proof = proof
        self.end_proof: Proof | None = None
        self.index = index  # among its election's beliefs (= its acquisition's index)
        self.successor: int | None = None  # time of the next acquisition's ok, once seen
        self.pairs = 0  # split-brain candidates it is part of, not yet judged


class _TopTwo:
    """The best grant (or status) so far by value, and the best of another owner:
    enough to answer "the best of anyone but X" for any X. Immutable: `add` returns a
    new one, so a snapshot is a reference."""

    __slots__ = ("first", "second")

    def __init__(self, first: Any = None, second: Any = None) -> None:
        self.first = first
        self.second = second

    def add(self, value: int, owner: Any, item: Any, key: int, who: int) -> _TopTwo:
        """`item[key]` is its value, `item[who]` its owner."""
        first, second = self.first, self.second
        if first is None or value > first[key]:
            if first is not None and first[who] != owner:
                second = first
            return _TopTwo(item, second)
        if owner != first[who] and (second is None or value > second[key]):
            return _TopTwo(first, item)
        return self

    def best_other_than(self, owner: Any, who: int) -> Any:
        if self.first is not None and self.first[who] != owner:
            return self.first
        return self.second


_NO_TOP = _TopTwo()
_MISSING = object()


class _Election:
    """What the rules and statistics keep for one election."""

    __slots__ = (
        "active",
        "best",
        "by_token",
        "count",
        "grants",
        "last_belief",
        "latencies",
        "leaderless",
        "name",
        "overlapped",
        "pairs",
        "rank",
        "snapshots",
        "times",
        "top",
        "unrecovered",
        "zero_since",
    )

    def __init__(self, name: str, rank: int, start_time: int) -> None:
        self.name = name
        self.rank = rank  # order of first acquisition among elections
        self.grants = 0
        self.times = array("q")  # ok time of each acquisition, in order
        self.snapshots: list[_TopTwo] = []  # top two tokens after each acquisition
        self.top = _NO_TOP
        self.best: Grant | None = None  # first greatest token so far (token-regression)
        # duplicate-token: the grant of each token, a list once a token is granted again
        self.by_token: dict[int, Grant | list[Grant]] = {}
        self.active: list[_Belief] = []  # beliefs that may still overlap a later one
        self.pairs: list[tuple[_Belief, _Belief]] = []  # overlap candidates, not judged
        self.count = 0  # beliefs in force
        self.zero_since = start_time  # since when none is, while count == 0
        self.leaderless = 0
        self.last_belief: _Belief | None = None
        self.latencies = array("q")
        self.unrecovered = 0
        self.overlapped = 0


class Stream:
    """The state of one pass over a history; feed events in order, then `verdict`."""

    def __init__(
        self,
        source: str | None,
        tolerance_ns: int,
        stale_grace_ns: int,
        lines: Callable[[set[int]], dict[int, bytes]] | None = None,
    ) -> None:
        """With `lines` (the raw lines of the file being read, by number), the records
        kept for every acquisition and term keep their line only, and a verdict that
        cites them reads those lines again; without it, they keep what `step` is given."""
        self.source = source
        self.lines = lines
        self.tolerance = tolerance_ns
        self.grace = stale_grace_ns
        self.problems: list[Problem] = []
        self.start_time: int | None = None
        self.last_time = 0
        # process -> line of its last event, for the processes with an event at
        # `last_time` (only those can have two events at one time: times never decrease)
        self.at_last_time: dict[Any, int] = {}
        self.open_ops: dict[Any, Open] = {}
        self.believing: dict[tuple[str, Any], _Belief] = {}
        self.beliefs_of: dict[Any, set[str]] = {}
        self.elections: dict[str, _Election] = {}
        self.believers = 0  # beliefs in force, all elections
        self.zero_since = 0
        self.leaderless = 0
        self.has_acquire = False
        self.writes_applied = 0
        self.writes_failed = 0
        self.writes_indeterminate = 0
        self.write_ranks: dict[str, list[int]] = {}  # election -> [rank, writes applied]
        self.deferred: list[tuple[Any, ...]] = []  # writes applied after their ok
        self.nemesis_events = 0
        self.statuses = 0
        # term-split-brain: the first status naming the leader of each term, a dict by
        # leader once a term has a second one
        self.leaders_by_term: dict[int, Seen | dict[Any, Seen]] = {}
        self.named: deque[Seen] = deque()  # statuses naming a leader, not yet in `seen`
        self.seen = _NO_TOP
        self.stale: dict[tuple[Any, int], tuple[Seen, Seen, Seen]] = {}
        # Violations found so far, each with its place in the reference's order.
        self.found: list[tuple[tuple[int, ...], tuple[Violation, list[Proof | None]]]] = []

    # --- the walk -----------------------------------------------------------------------

    def bad(self, line: int, message: str) -> None:
        self.problems.append(Problem(line or None, message, self.source))

    def feed(self, events: Iterable[Event]) -> None:
        """Walk `Event`s already in (time, line) order."""
        step = self.step
        for e in events:
            step(e, e.line, e)

    def step(self, e: Any, line: int, ref: Any) -> None:
        """One event, no earlier than the one before; `ref` is what cites it. (`read`
        does the same for each line, written out in its loop.)"""
        time = e.time
        p = e.process
        if self.start_time is None or time != self.last_time:
            if self.start_time is None:
                self.start_time = self.zero_since = time
            self.at_last_time = {p: line}
        else:
            before = self.at_last_time.get(p)
            if before is not None:
                self.twice(p, time, before, line)
            self.at_last_time[p] = line
        self.last_time = time
        if p == NEMESIS:
            self.nemesis_events += 1
        else:
            _HANDLERS.get(e.f, Stream._other)(self, e, line, ref)

    def read(self, fh: BinaryIO) -> bool:
        """Decode, validate and walk the lines of a history file while their times do not
        decrease. Returns False at the first event earlier than the one before it
        (nothing more is read), else True. Raises MalformedHistory, listing every
        problem of single lines, at the end (or at MAX_PROBLEMS), as
        `harness.history.reader.event_batches` does; the walk's own problems are in
        `problems`."""
        parser = LineParser(self.source)
        one = parser.one
        check_index = parser.check_index
        decode = decode_fast
        invalid = msgspec.DecodeError
        handlers = _HANDLERS
        other = Stream._other
        # The processes with an event at last_time: the last one as two locals, a dict
        # only once a second event has the same time (most times are distinct).
        last_p: Any = None
        last_line = 0
        same: dict[Any, int] | None = self.at_last_time or None
        lineno = 0
        first = self.start_time is None
        last_time = self.last_time if self.start_time is not None else -TIME_LIMIT
        nemesis = 0
        # This loop runs once per line of a million-line history: it is `step` written
        # out with locals, and most events cost one decode and one handler call.
        try:
            for lines in line_chunks(fh):
                for raw in lines:
                    lineno += 1
                    e: Any = None
                    if raw is not None:
                        try:
                            e = decode(raw)
                        except invalid:
                            pass  # `one` says what is wrong, or skips a blank line
                        else:
                            if e.index is not None:
                                check_index(lineno, e.index)
                    if e is None:
                        e = one(raw, lineno)
                        if e is None:
                            if parser.full:
                                break
                            continue
                    time = e.time
                    p = e.process
                    if time > last_time:
                        last_p, last_line, same = p, lineno, None
                        if first:
                            self.start_time = self.zero_since = time
                            first = False
                        last_time = time
                    elif time == last_time:
                        if same is None:
                            same = {last_p: last_line}
                        before = same.get(p)
                        if before is not None:
                            self.twice(p, time, before, lineno)
                        same[p] = lineno
                    else:
                        self.last_time = last_time
                        self.nemesis_events += nemesis
                        return False
                    if p == NEMESIS:
                        nemesis += 1
                    else:
                        handlers.get(e.f, other)(self, e, lineno, raw)
                else:
                    continue
                break  # MAX_PROBLEMS
        except (OSError, EOFError, zlib.error) as exc:
            raise HistoryError(f"{self.source or 'history'}: cannot read: {exc}") from exc
        if self.start_time is not None:  # else no event: last_time is still the floor
            self.last_time = last_time
        self.at_last_time = same or ({} if first else {last_p: last_line})
        self.nemesis_events += nemesis
        error = parser.malformed()
        if error is not None:
            raise error
        return True

    def twice(self, p: Any, time: int, before: int, line: int) -> None:
        self.bad(
            line,
            f"process {p!r} has two events at time {time} (lines {before} "
            f"and {line}); events of one process must be strictly ordered in time",
        )

    def begin(self, e: Any, line: int, ref: Any, extra: Any = None) -> bool:
        """Open the invoke `e`; False (reported) when its process already has one open."""
        p = e.process
        current = self.open_ops.get(p)
        if current is not None:
            self.bad(
                line,
                f"second invoke by process {p!r} while its {current[0]!r} invoked "
                f"at line {current[1]} is still open",
            )
            return False
        time = e.time
        self.open_ops[p] = (
            e.f,
            line,
            e.election,
            time,
            e.value,
            ref,
            extra,
        )
        return True

    def complete(self, e: Any, line: int) -> Open | None:
        """Close the open invoke that the completion `e` completes and return it; None
        (reported) when there is none, or it is of another operation or election."""
        p = e.process
        current = self.open_ops.get(p)
        if current is None:
            self.bad(line, f"{e.type} {e.f!r} by process {p!r} completes no open invoke")
            return None
        if current[0] != e.f:
            self.bad(
                line,
                f"{e.type} {e.f!r} by process {p!r} does not match its open "
                f"{current[0]!r} invoke at line {current[1]}",
            )
            return None
        if current[2] != e.election:
            self.bad(
                line,
                f"completion is in election {e.election!r} but its invoke at line "
                f"{current[1]} is in {current[2]!r}",
            )
            return None
        del self.open_ops[p]
        return current

    # --- handlers: one per operation ----------------------------------------------------

    def _write(self, e: Any, line: int, ref: Any) -> None:
        """A write invoke carries the writer's token; an applied write is judged by the
        stale-write rule at once (or, applied after its ok, at the end)."""
        p = e.process
        etype = e.type
        open_ops = self.open_ops
        if etype == "invoke":
            if p in open_ops:
                self.begin(e, line, ref)  # reports the second invoke
                return
            v = e.value
            if v is None or type(v.get("token")) is not int:
                self.bad(line, "write invoke needs value.token (integer)")
                return
            name = e.election
            election = self.elections.get(name)
            open_ops[p] = (
                "write",
                line,
                name,
                e.time,
                v,
                ref,
                _NO_TOP if election is None else election.top,  # grants before the invoke
            )
            return
        current = open_ops.get(p)
        if current is None or current[0] != "write" or current[2] != e.election:
            self.complete(e, line)  # reports what is wrong
            return
        del open_ops[p]
        if etype == "fail":
            self.writes_failed += 1
            return
        if etype != "ok":
            self.writes_indeterminate += 1
            return
        v = e.value
        applied_at = None if v is None else v.get("applied_at")
        if applied_at is not None and type(applied_at) is not int:
            self.bad(line, "write ok value.applied_at must be an integer (ns) when present")
            return
        self.writes_applied += 1
        name = e.election
        rank = self.write_ranks.get(name)
        if rank is None:
            rank = self.write_ranks[name] = [len(self.write_ranks), 0]
        n = rank[1]  # the write's place in the reference's order: (rank[0], n)
        rank[1] = n + 1
        time = e.time
        if applied_at is None:
            top = current[6]  # grants before the invoke
        elif applied_at > time:  # grants after the ok may come before applied_at
            self.deferred.append(
                (name, p, current, applied_at, time, (time, line, ref), (rank[0], n))
            )
            return
        else:
            top = self._grants_before(name, applied_at)
        # The common case, a write by the holder of the greatest token, ends here.
        other = top.first
        if other is not None and other[1] == p:
            other = top.second
        if other is not None and other[0] > current[4]["token"]:
            proof = (time, line, ref)
            self._stale_write(name, p, current, applied_at, time, proof, (rank[0], n), other)

    def _grants_before(self, name: str, time: int) -> _TopTwo:
        """The top two grants of election `name` whose ok came strictly before `time`."""
        election = self.elections.get(name)
        if election is None:
            return _NO_TOP
        times = election.times
        if times and times[-1] < time:
            return election.top
        count = bisect_left(times, time)
        return election.snapshots[count - 1] if count else _NO_TOP

    def _judge_deferred(
        self,
        name: str,
        p: Any,
        invoke: Open,
        applied_at: int,
        time: int,
        proof: Proof,
        key: tuple[int, int],
    ) -> None:
        other: Grant | None = self._grants_before(name, applied_at).best_other_than(p, 1)
        if other is not None and other[0] > invoke[4]["token"]:
            self._stale_write(name, p, invoke, applied_at, time, proof, key, other)

    def _stale_write(
        self,
        election_name: str,
        p: Any,
        invoke: Open,
        applied_at: int | None,
        time: int,
        proof: Proof,
        key: tuple[int, int],
        other: Grant,
    ) -> None:
        token = invoke[4]["token"]
        if applied_at is not None:
            when = f"before it was applied at {seconds(applied_at)}"
        else:
            when = f"before the write was invoked at {seconds(invoke[3])}"
        seq = _value_of(invoke[5]).get("seq")
        self.found.append(
            (
                (3, *key),
                _violation(
                    "stale-write",
                    election_name,
                    [p, other[1]],
                    other[2],
                    max(other[2], applied_at if applied_at is not None else time),
                    f"write seq {seq!r} with token {token} by {p!r} was applied "
                    f"(ok at {seconds(time)}) although {other[1]!r} had "
                    f"acquired token {other[0]} at {seconds(other[2])}, {when}",
                    [(other[2], other[3], other[4]), _proof_of(invoke), proof],
                ),
            )
        )

    def _status(self, e: Any, line: int, ref: Any) -> None:
        """A `status` observation: member `node` said `leader` leads `term`."""
        if e.type != "ok":
            self.bad(line, f'a status observation must have type "ok", not {e.type!r}')
            return
        v = e.value
        node = None if v is None else v.get("node")
        term = None if v is None else v.get("term")
        if (type(node) is not str and type(node) is not int) or type(term) is not int:
            self.bad(line, "status needs value {node: name, leader: name or null, term: integer}")
            return
        leader = v.get("leader", _MISSING)
        if not (leader is None or type(leader) is str or type(leader) is int):
            self.bad(line, "status value.leader must be a name or null (null: no leader known)")
            return
        self.statuses += 1
        time = e.time
        s = (time, node, leader, term, line, None if self.lines else ref)
        grace = self.grace
        named = self.named
        # Named statuses more than the grace before now are in `seen` for this and
        # every later status (times never decrease).
        while named and time - named[0][0] > grace:
            old = named.popleft()
            self.seen = self.seen.add(old[3], old[2], old, 3, 2)
        if leader is None:
            return
        named.append(s)
        leaders = self.leaders_by_term.get(term)
        if leaders is None:
            self.leaders_by_term[term] = s
        elif type(leaders) is tuple:
            if leaders[2] != leader:
                self.leaders_by_term[term] = {leaders[2]: leaders, leader: s}
        elif leader not in leaders:
            leaders[leader] = s  # type: ignore[index]
        if leader != node:
            return
        higher: Seen | None = self.seen.best_other_than(node, 2)
        if higher is None or higher[3] <= term:
            return
        key = (node, term)
        known = self.stale.get(key)
        self.stale[key] = (s, s, higher) if known is None else (known[0], s, known[2])

    def _lost(self, e: Any, line: int, ref: Any) -> None:
        """The process noticed it no longer leads this election."""
        if e.type != "info":
            self.bad(line, f"'lost' is an observation and must have type \"info\", not {e.type!r}")
            return
        self.end_belief(e.election, e.process, e.time, (e.time, line, ref), "lost")

    def _crash(self, e: Any, line: int, ref: Any) -> None:
        """A crashed process holds nothing in any election, and its operation in flight
        will never complete."""
        if e.type != "info":
            self.bad(line, f"'crash' is an observation and must have type \"info\", not {e.type!r}")
            return
        p = e.process
        proof = (e.time, line, ref)
        for election in list(self.beliefs_of.get(p, ())):
            self.end_belief(election, p, e.time, proof, "crash")
        self.open_ops.pop(p, None)

    def _acquire(self, e: Any, line: int, ref: Any) -> None:
        """Campaigning ends the process's belief in that election; an ok starts a new one
        with its fencing token; fail and info leave the process without one."""
        if e.type == "invoke":
            election = self.elections.get(e.election)
            # The greatest token granted before the invoke (token-regression).
            if self.begin(e, line, ref, None if election is None else election.best):
                self.has_acquire = True
                self.end_belief(e.election, e.process, e.time, (e.time, line, ref), "acquire")
            return
        current = self.complete(e, line)
        if current is None or e.type != "ok":
            return
        v = e.value
        if v is None or type(v.get("token")) is not int:
            self.bad(line, "acquire ok needs value.token (integer): the fencing token")
            return
        self._grant(e.election, e.process, v["token"], e.time, (e.time, line, ref), current)

    def _grant(self, name: str, p: Any, token: int, time: int, proof: Proof, invoke: Open) -> None:
        election = self.elections.get(name)
        if election is None:
            start = self.start_time if self.start_time is not None else time
            election = self.elections[name] = _Election(name, len(self.elections), start)
        grant: Grant = (token, p, time, proof[1], None if self.lines else proof[2])
        index = election.grants
        election.grants += 1
        election.times.append(time)
        election.top = election.top.add(token, p, grant, 0, 1)
        election.snapshots.append(election.top)
        same = election.by_token.get(token)
        if same is None:
            election.by_token[token] = grant
        elif type(same) is list:
            same.append(grant)
        else:
            election.by_token[token] = [same, grant]  # type: ignore[list-item]
        # token-regression: the greatest token granted before this one's invoke.
        top: Grant | None = invoke[6]
        if top is not None and token < top[0]:
            self.found.append(
                (
                    (2, election.rank, index),
                    _violation(
                        "token-regression",
                        name,
                        [p] if top[1] == p else [p, top[1]],
                        top[2],
                        time,
                        f"{p!r} invoked acquire at {seconds(invoke[3])}, after "
                        f"{top[1]!r} had acquired token {top[0]} at "
                        f"{seconds(top[2])}, and received the smaller token {token} "
                        f"at {seconds(time)}",
                        [(top[2], top[3], top[4]), _proof_of(invoke), proof],
                    ),
                )
            )
        if election.best is None or token > election.best[0]:
            election.best = grant
        # Failover of the previous leadership: this is its successor.
        previous = election.last_belief
        if previous is not None:
            if previous.live:
                previous.successor = time
            else:  # it ended at an event, not later than this one
                election.latencies.append(time - previous.end)
        belief = _Belief(p, token, time, index, proof)
        election.last_belief = belief
        self.believing[(name, p)] = belief
        self.beliefs_of.setdefault(p, set()).add(name)
        # Leaderless time: a gap ends where a belief starts.
        if election.count == 0:
            election.leaderless += time - election.zero_since
        election.count += 1
        if self.believers == 0:
            self.leaderless += time - self.zero_since
        self.believers += 1
        # split-brain: every belief that may still overlap this one by > tolerance.
        tolerance = self.tolerance
        active = [a for a in election.active if a.live or a.end - time > tolerance]
        for a in active:
            if a.process != p:
                election.pairs.append((a, belief))
                a.pairs += 1
                belief.pairs += 1
        active.append(belief)
        election.active = active

    def _release(self, e: Any, line: int, ref: Any) -> None:
        """The process stops acting as leader when it invokes release."""
        if e.type == "invoke":
            if self.begin(e, line, ref):
                self.end_belief(e.election, e.process, e.time, (e.time, line, ref), "release")
            return
        self.complete(e, line)

    def _other(self, e: Any, line: int, ref: Any) -> None:
        """An operation the rules do not know: its invokes and completions still pair (a
        process has one operation in flight), and a lone `info` is a one-off event."""
        if e.type == "invoke":
            self.begin(e, line, ref)
            return
        current = self.open_ops.get(e.process)
        if e.type == "info" and (current is None or current[0] != e.f):
            return
        self.complete(e, line)

    def end_belief(self, name: str, p: Any, time: int, proof: Proof | None, why: str) -> None:
        belief = self.believing.pop((name, p), None)
        if belief is None:
            return
        held = self.beliefs_of[p]
        held.discard(name)
        if not held:
            del self.beliefs_of[p]  # processes come and go (a crashed one never returns)
        self._close(self.elections[name], belief, time, proof, why)

    def _close(
        self, election: _Election, belief: _Belief, time: int, proof: Proof | None, why: str
    ) -> None:
        belief.live = False
        belief.end = time
        belief.ended_by = why
        belief.end_proof = proof
        election.count -= 1
        if election.count == 0:
            election.zero_since = time
        self.believers -= 1
        if self.believers == 0:
            self.zero_since = time
        # A leadership that ended before the end of the history, already followed by
        # the next grant (else that grant, if any, records its failover).
        if proof is not None and belief.successor is not None:
            latency = belief.successor - time
            if latency < 0:
                election.overlapped += 1
            election.latencies.append(max(0, latency))
        if belief.pairs:
            self._judge_pairs(election)

    def _judge_pairs(self, election: _Election) -> None:
        """Split-brain candidates whose two beliefs have both ended."""
        waiting: list[tuple[_Belief, _Belief]] = []
        for a, b in election.pairs:
            if a.live or b.live:
                waiting.append((a, b))
                continue
            a.pairs -= 1
            b.pairs -= 1
            overlap_end = min(a.end, b.end)
            if overlap_end - b.start <= self.tolerance:
                continue
            self.found.append(
                (
                    (0, election.rank, b.index, a.index),
                    _violation(
                        "split-brain",
                        election.name,
                        [a.process, b.process],
                        b.start,
                        overlap_end,
                        f"{a.process!r} (token {a.token}, leader from {seconds(a.start)} "
                        f"until {seconds(a.end)}, ended by {a.ended_by}) and "
                        f"{b.process!r} (token {b.token}, leader from "
                        f"{seconds(b.start)} until {seconds(b.end)}, ended by "
                        f"{b.ended_by}) both believed they led for "
                        f"{duration(overlap_end - b.start)}",
                        [a.start_proof, a.end_proof, b.start_proof, b.end_proof],
                    ),
                )
            )
        election.pairs = waiting

    # --- the end ------------------------------------------------------------------------

    def verdict(self) -> Verdict:
        """Beliefs still in force end with the history; then every rule's last word."""
        end = self.last_time
        start = end if self.start_time is None else self.start_time
        for (name, _), belief in list(self.believing.items()):
            self._close(self.elections[name], belief, end, None, "end of history")
        self.believing.clear()
        for write in self.deferred:
            self._judge_deferred(*write)
        for election in self.elections.values():
            if election.count == 0:
                election.leaderless += end - election.zero_since
            last = election.last_belief
            if last is not None and last.end_proof is not None and last.successor is None:
                election.unrecovered += 1
        if self.believers == 0:
            self.leaderless += end - self.zero_since
        self._duplicate_tokens()
        self._term_split_brain()
        self._stale_leaders()
        found = [v for _, v in sorted(self.found, key=lambda kv: kv[0])]  # the reference's order
        wanted = {p[1] for _, proofs in found for p in proofs if p is not None and p[2] is None}
        raws = self.lines(wanted) if wanted and self.lines is not None else {}
        violations: list[Violation] = []
        for violation, proofs in found:
            violation["events"] = cite(proofs, raws, self.source)
            violations.append(violation)
        violations.sort(key=lambda v: (v["start"], _KIND_ORDER[v["kind"]]))
        valid: bool | Literal["unknown"] = (
            "unknown" if not self.has_acquire and not self.statuses else not violations
        )
        return {
            "valid": valid,
            "violations": violations,
            "stats": self._stats(start, end),
            "settings": {"tolerance_ns": self.tolerance, "stale_grace_ns": self.grace},
        }

    def _duplicate_tokens(self) -> None:
        for name, election in self.elections.items():
            for n, (token, grants) in enumerate(election.by_token.items()):
                if type(grants) is not list:
                    continue
                processes: list[Any] = []
                for g in grants:
                    if g[1] not in processes:
                        processes.append(g[1])
                if len(processes) < 2:
                    continue
                self.found.append(
                    (
                        (1, election.rank, n),
                        _violation(
                            "duplicate-token",
                            name,
                            processes,
                            grants[0][2],
                            grants[-1][2],
                            f"token {token} was granted to {len(processes)} processes: "
                            + ", ".join(f"{g[1]!r} at {seconds(g[2])}" for g in grants),
                            [(g[2], g[3], g[4]) for g in grants],
                        ),
                    )
                )

    def _term_split_brain(self) -> None:
        for n, (term, leaders) in enumerate(sorted(self.leaders_by_term.items())):
            if type(leaders) is not dict:
                continue
            firsts = list(leaders.values())
            self.found.append(
                (
                    (4, n),
                    _violation(
                        "term-split-brain",
                        None,
                        list(leaders),
                        firsts[0][0],
                        firsts[-1][0],
                        f"term {term} has {len(leaders)} leaders: "
                        + ", ".join(
                            f"{s[2]!r} (first named by {s[1]!r} at {seconds(s[0])})" for s in firsts
                        ),
                        [(s[0], s[4], s[5]) for s in firsts],
                    ),
                )
            )

    def _stale_leaders(self) -> None:
        grace = self.grace
        for n, ((node, term), (first, last, witness)) in enumerate(self.stale.items()):
            self.found.append(
                (
                    (5, n),
                    _violation(
                        "stale-leader",
                        None,
                        [node, witness[2]],  # the witness names a leader other than node
                        first[0],
                        last[0],
                        f"{node!r} reported itself leader of term {term} from "
                        f"{seconds(first[0])} to {seconds(last[0])}, although "
                        f"{witness[1]!r} had named {witness[2]!r} leader of the higher term "
                        f"{witness[3]} at {seconds(witness[0])} (grace {duration(grace)})",
                        [(s[0], s[4], s[5]) for s in (first, last, witness)],
                    ),
                )
            )

    def _stats(self, start: int, end: int) -> Any:
        span = end - start
        per_election: dict[str, ElectionStats] = {}
        every: list[int] = []
        unrecovered = overlapped = 0
        for name in sorted(self.elections):
            election = self.elections[name]
            every.extend(election.latencies)
            unrecovered += election.unrecovered
            overlapped += election.overlapped
            per_election[name] = {
                "acquisitions": election.grants,
                "leaderless_ns": election.leaderless,
                "failover_ns": _summary(
                    list(election.latencies), election.unrecovered, election.overlapped
                ),
            }
        return {
            "acquisitions": sum(e.grants for e in self.elections.values()),
            "leaderless_ns": self.leaderless,
            "failover_ns": _summary(every, unrecovered, overlapped),
            "span_ns": span,
            "writes_applied": self.writes_applied,
            "writes_failed": self.writes_failed,
            "writes_indeterminate": self.writes_indeterminate,
            "status_observations": self.statuses,
            "nemesis_events": self.nemesis_events,
            "elections": per_election,
        }


# One handler per operation (`f`); any other operation goes to `Stream._other`. Plain
# functions, not bound methods: a stream holding its own methods would be a cycle that
# only the (paused) garbage collector frees.
_HANDLERS: dict[str, Callable[[Stream, Any, int, Any], None]] = {
    "write": Stream._write,
    "status": Stream._status,
    "acquire": Stream._acquire,
    "release": Stream._release,
    "lost": Stream._lost,
    "crash": Stream._crash,
}


def _summary(latencies: list[int], unrecovered: int, overlapped: int) -> FailoverSummary:
    latencies.sort()
    return {
        "count": len(latencies),
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": latencies[-1] if latencies else None,
        "unrecovered": unrecovered,
        "overlapped": overlapped,
    }
