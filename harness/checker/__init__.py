"""The checker: a pure function from a history's events to a verdict (docs/HISTORY.md).

    verdict = check(events, tolerance_ns=0, stale_grace_ns=0)
    verdict = check_file(path, tolerance_ns=0, stale_grace_ns=0)

`valid` is True, False, or "unknown" when the history holds neither an acquire nor a
status event. Malformed input raises `MalformedHistory` with every problem and its line.

Both run one `harness.checker.stream.Stream` over the events in (time, line) order.
`check_file` streams: a history whose lines are in time order (what the harness writes)
is judged while it is read, holding only what the rules still need (beliefs in force,
operations in flight, compact records of grants and terms), never the events
themselves; at the first line earlier than the one before, it falls back to reading the
whole file and sorting it. `harness.checker.rules` over a `Walk` is the reference the
differential tests hold the stream to.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from operator import attrgetter

from harness.checker.stream import VIOLATION_KINDS, Stream
from harness.checker.types import Verdict, Violation
from harness.history.events import TIME_LIMIT, Event, HistoryError, MalformedHistory
from harness.history.reader import index_problems, line_chunks, open_history, read_history
from harness.nogc import gc_paused


def check(
    events: Iterable[Event],
    *,
    tolerance_ns: int = 0,
    stale_grace_ns: int = 0,
    source: str | None = None,
) -> Verdict:
    _check_settings(tolerance_ns, stale_grace_ns)
    with gc_paused():
        return _check_events(events, tolerance_ns, stale_grace_ns, source)


def _check_events(
    events: Iterable[Event], tolerance_ns: int, stale_grace_ns: int, source: str | None
) -> Verdict:
    events = events if isinstance(events, list | tuple) else list(events)
    stream = Stream(source, tolerance_ns, stale_grace_ns)
    stream.problems.extend(index_problems(events, source))
    stream.feed(sorted(events, key=attrgetter("time")))  # stable: ties keep file order
    return _verdict(stream)


def _check_settings(tolerance_ns: int, stale_grace_ns: int) -> None:
    for name, value in (("tolerance", tolerance_ns), ("stale-leader grace", stale_grace_ns)):
        if not 0 <= value < TIME_LIMIT:
            raise ValueError(f"{name} must be >= 0 and < 2**62 ns, got {value}")


def _verdict(stream: Stream) -> Verdict:
    if stream.problems:
        stream.problems.sort(key=lambda p: p.line or 0)
        raise MalformedHistory(stream.problems)
    return stream.verdict()


def check_file(
    path: str | os.PathLike[str], *, tolerance_ns: int = 0, stale_grace_ns: int = 0
) -> Verdict:
    _check_settings(tolerance_ns, stale_grace_ns)
    source = os.fspath(path)
    with gc_paused():
        stream = Stream(source, tolerance_ns, stale_grace_ns, lambda n: _lines(path, n))
        with open_history(path) as fh:
            in_order = stream.read(fh)
        if in_order:
            return _verdict(stream)
        del stream  # what it holds is of no use now: free it before reading it all
        return _check_events(read_history(path), tolerance_ns, stale_grace_ns, source)


def _lines(path: str | os.PathLike[str], wanted: set[int]) -> dict[int, bytes]:
    """The raw lines numbered `wanted` of the history file, read again to cite them."""
    found: dict[int, bytes] = {}
    last = max(wanted)
    number = 0
    try:
        with open_history(path) as fh:
            for chunk in line_chunks(fh):
                for raw in chunk:
                    number += 1
                    if number in wanted and raw is not None:
                        found[number] = raw
                if number >= last:
                    break
    except (OSError, EOFError, zlib.error) as exc:
        raise HistoryError(f"{os.fspath(path)}: cannot read: {exc}") from exc
    return found  # a line missing now is reported where it is cited


__all__ = ["VIOLATION_KINDS", "Verdict", "Violation", "check", "check_file"]
