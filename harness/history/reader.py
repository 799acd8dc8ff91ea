"""Reading histories: plain or gzip JSON Lines into validated `Event`s.

Every line that is not blank must be one JSON object with valid fields; each problem is
reported with its file line, and nothing is guessed. Gzip is recognised by its magic
bytes, not by the file name.

Files are read in chunks and split into lines here, so no line costs more than
`MAX_LINE_BYTES` of memory however long it is (a small gzip can hold one line of
hundreds of megabytes); a longer line is reported as malformed. `event_batches` yields
the events chunk by chunk, so a caller can use them while the file is read.

A well-formed line is decoded by msgspec straight into a struct whose field types are
the format's (checked in C: most of the cost of a million lines); any line it refuses
goes through orjson and `Event.from_dict`, which say what is wrong. The structs take
only what that plain path takes, value for value (tests/history hold them to it).
`FastEvent` and `decode_fast` serve the checker's streaming pass
(`harness.checker.stream`), which reads them without making `Event`s.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any, BinaryIO, Literal

import msgspec
import orjson

from harness.history.events import (
    DEFAULT_ELECTION,
    TIME_LIMIT,
    Event,
    HistoryError,
    MalformedHistory,
    Problem,
)
from harness.nogc import gc_paused

_GZIP_MAGIC = b"\x1f\x8b"
MAX_PROBLEMS = 1000  # past this, more problems add nothing a person can use
# The longest history line accepted. A line is one event; the largest the harness writes
# are nemesis events naming a few nodes (well under 1 KiB), so 1 MiB leaves room for
# any honest value while bounding what one line can cost.
MAX_LINE_BYTES = 1 << 20
_CHUNK_BYTES = MAX_LINE_BYTES  # read size; no larger, so only a chunk's first line can be too long


class LineParser:
    """Turns lines into events, collecting every problem with its line number (the
    checker's streaming pass uses `one` for every line the fast decoder refuses)."""

    __slots__ = ("index_problems", "last_index", "lineno", "problems", "source")

    last_index: tuple[int, int] | None

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.lineno = 0
        self.problems: list[Problem] = []  # lines that are not valid events
        self.index_problems: list[Problem] = []  # indexes that do not increase
        self.last_index = None  # (line, index) of the last event that had an index

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS

    def parse(self, lines: Iterable[bytes | str | None]) -> list[Event]:
        """Events of `lines` (the file's next lines in order; None stands for a line
        longer than MAX_LINE_BYTES). Stops adding problems at MAX_PROBLEMS."""
        events: list[Event] = []
        append = events.append
        problems = self.problems
        loads = orjson.loads
        from_dict = Event.from_dict
        decode = _decode_flat
        invalid = msgspec.DecodeError
        lineno = self.lineno
        for raw in lines:
            lineno += 1
            if raw is None:
                problems.append(
                    Problem(lineno, f"line longer than {MAX_LINE_BYTES} bytes", self.source)
                )
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            try:
                f = decode(raw)  # a well-formed event with a flat value, checked in C
            except invalid:
                pass  # anything else: orjson and the field checks, which say what is wrong
            else:
                event = Event(
                    f.time, f.process, f.type, f.f, f.value, f.node, f.index, f.election, lineno
                )
                if event.index is not None:
                    self.check_index(lineno, event.index)
                append(event)
                continue
            try:
                event = from_dict(loads(raw), lineno)
            except orjson.JSONDecodeError as exc:
                # Blank lines are allowed; testing for them only when parsing fails keeps
                # the common path to one call per line.
                if not raw.strip():
                    continue
                problems.append(Problem(lineno, f"not valid JSON: {exc}", self.source))
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            except ValueError as exc:
                problems.append(Problem(lineno, str(exc), self.source))
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            if event.index is not None:
                self.check_index(lineno, event.index)
            append(event)
        self.lineno = lineno
        return events

    def check_index(self, line: int, index: int) -> None:
        last = self.last_index
        if last is not None and index <= last[1]:
            self.index_problems.append(_index_problem(line, index, *last, self.source))
        self.last_index = (line, index)

    def one(self, raw: bytes | None, lineno: int) -> Event | None:
        """The event of line `lineno` (None: longer than MAX_LINE_BYTES), or None when
        it is blank or not an event (the problem is recorded); checks its index."""
        self.lineno = lineno - 1
        events = self.parse((raw,))
        return events[0] if events else None

    def malformed(self) -> MalformedHistory | None:
        """The error to raise once the input is read, or None: problems of single lines
        first; index order only when every line was well-formed (as `parse_lines`)."""
        problems = self.problems or self.index_problems
        return MalformedHistory(problems) if problems else None


def _index_problem(
    line: int, index: int, last_line: int, last_index: int, source: str | None
) -> Problem:
    return Problem(
        line or None,
        f"index {index} does not increase (line {last_line} has "
        f"index {last_index}); indexes must strictly increase in file order",
        source,
    )


def parse_lines(lines: Iterable[bytes | str], source: str | None = None) -> list[Event]:
    """Decode and validate JSON Lines; raises MalformedHistory listing every bad line."""
    with gc_paused():
        parser = LineParser(source)
        events = parser.parse(None if len(raw) > MAX_LINE_BYTES else raw for raw in lines)
        error = parser.malformed()
        if error is not None:
            raise error
        return events


def index_problems(events: Sequence[Event], source: str | None = None) -> list[Problem]:
    """`index`, where present, must strictly increase in file (list) order."""
    problems: list[Problem] = []
    last: tuple[int, int] | None = None  # (line, index)
    for event in events:
        index = event.index
        if index is None:
            continue
        if last is not None and index <= last[1]:
            problems.append(_index_problem(event.line, index, *last, source))
        last = (event.line, index)
    return problems


def line_chunks(fh: BinaryIO) -> Iterator[list[bytes | None]]:
    """The lines of `fh` without their newlines, a chunk's worth at a time; a line
    longer than MAX_LINE_BYTES comes as None, and is never held whole."""
    tail = b""  # the start of a line that the next chunk continues
    skipping = False  # inside an over-long line (already yielded as None) until its end
    while chunk := fh.read(_CHUNK_BYTES):
        lines: list[bytes | None] = chunk.split(b"\n")  # type: ignore[assignment]
        last: bytes = lines.pop()  # type: ignore[assignment]
        if lines:
            if skipping:
                del lines[0]  # the end of the over-long line
                skipping = False
            else:
                first = tail + lines[0]  # type: ignore[operator]
                # Only the first line can be too long: every other one lies within
                # this chunk, which is no longer than MAX_LINE_BYTES.
                lines[0] = None if len(first) > MAX_LINE_BYTES else first
            tail = b""
        if skipping:
            pass  # still inside the over-long line: drop this part of it
        elif len(tail) + len(last) > MAX_LINE_BYTES:
            lines.append(None)
            skipping = True
            tail = b""
        else:
            tail += last
        if lines:
            yield lines
    if tail:
        yield [tail]


def event_batches(fh: BinaryIO, source: str | None = None) -> Iterator[list[Event]]:
    """The events of a history file, a chunk at a time, in file order. Raises
    MalformedHistory, listing every problem, after the last batch (or at MAX_PROBLEMS):
    a caller that used the batches must drop what it made of them then."""
    parser = LineParser(source)
    try:
        for lines in line_chunks(fh):
            events = parser.parse(lines)
            if parser.full:
                break
            if events:
                yield events
    except (OSError, EOFError, zlib.error) as exc:
        raise HistoryError(f"{source or 'history'}: cannot read: {exc}") from exc
    error = parser.malformed()
    if error is not None:
        raise error


def open_history(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a history file for reading bytes, transparently un-gzipping it."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
        if magic == _GZIP_MAGIC:
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except OSError as exc:
        raise HistoryError(f"{os.fspath(path)}: cannot open: {exc.strerror or exc}") from exc


def read_history(path: str | os.PathLike[str]) -> list[Event]:
    """Read and validate a whole history file (plain or gzip)."""
    source = os.fspath(path)
    events: list[Event] = []
    with gc_paused(), open_history(path) as fh:
        for batch in event_batches(fh, source):
            events.extend(batch)
    return events


# orjson reads an integer beyond 64 bits as a float, msgspec as an integer: the fast
# path takes only integers of int64 (a little narrower than orjson's), so that an event
# means exactly what `Event.from_dict` makes of it. Integers nested deeper in a value
# are never read by the checker (a cited event is decoded again by orjson).
_Int = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
_Item = _Int | float | str | bool | None | list[Any] | dict[str, Any]


class FastEvent(msgspec.Struct, gc=False):
    """A well-formed event as msgspec decodes it straight from a line, its fields checked
    by the decoder in C as `Event.from_dict` checks them in Python (no booleans for
    integers, no 1.0, `time` within +-2**62); anything it refuses goes to
    `Event.from_dict`, which says what is wrong. It has the fields the checker reads
    (`harness.checker.stream`); its line is told alongside."""

    time: Annotated[int, msgspec.Meta(gt=-TIME_LIMIT, lt=TIME_LIMIT)]
    process: str | _Int
    type: Literal["invoke", "ok", "fail", "info"]
    f: str
    value: dict[str, _Item] | None = None
    node: str | None = None
    index: _Int | None = None
    election: str = DEFAULT_ELECTION


decode_fast = msgspec.json.Decoder(FastEvent).decode  # raises msgspec.DecodeError


class _FlatEvent(FastEvent, gc=False):
    """A FastEvent whose value holds no arrays or objects: an `Event` keeps its value
    whole, and msgspec would read an integer past 64 bits nested in them as an integer
    where orjson reads a float (such lines go to orjson)."""

    value: dict[str, _Int | float | str | bool | None] | None = None  # type: ignore[assignment]


_decode_flat = msgspec.json.Decoder(_FlatEvent).decode
