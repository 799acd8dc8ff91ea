"""Reading histories: plain or gzip JSON Lines into validated `Event`s.

Every line that is not blank must be one JSON object with valid fields; each problem is
reported with its file line, and nothing is guessed. Gzip is recognised by its magic
bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Sequence
from typing import BinaryIO

import orjson

from harness.history.events import Event, HistoryError, MalformedHistory, Problem
from harness.nogc import gc_paused

_GZIP_MAGIC = b"\x1f\x8b"
MAX_PROBLEMS = 1000  # past this, more problems add nothing a person can use


def parse_lines(lines: Iterable[bytes | str], source: str | None = None) -> list[Event]:
    """Decode and validate JSON Lines; raises MalformedHistory listing every bad line."""
    with gc_paused():
        return _parse_lines(lines, source)


def _parse_lines(lines: Iterable[bytes | str], source: str | None) -> list[Event]:
    events: list[Event] = []
    problems: list[Problem] = []
    loads = orjson.loads
    from_dict = Event.from_dict
    for lineno, raw in enumerate(lines, 1):
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError as exc:
            # Blank lines are allowed; testing for them only when parsing fails keeps
            # the common path to one call per line.
            if not raw.strip():
                continue
            problems.append(Problem(lineno, f"not valid JSON: {exc}", source))
        else:
            try:
                events.append(from_dict(obj, lineno))
            except ValueError as exc:
                problems.append(Problem(lineno, str(exc), source))
        if len(problems) >= MAX_PROBLEMS:
            break
    if not problems:
        problems = index_problems(events, source)
    if problems:
        raise MalformedHistory(problems)
    return events


def index_problems(events: Sequence[Event], source: str | None = None) -> list[Problem]:
    """`index`, where present, must strictly increase in file (list) order."""
    problems: list[Problem] = []
    last: Event | None = None
    for event in events:
        if event.index is None:
            continue
        if last is not None and event.index <= last.index:  # type: ignore[operator]
            problems.append(
                Problem(
                    event.line or None,
                    f"index {event.index} does not increase (line {last.line} has "
                    f"index {last.index}); indexes must strictly increase in file order",
                    source,
                )
            )
        last = event
    return problems


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
    with open_history(path) as fh:
        try:
            return parse_lines(fh, source)
        except (OSError, EOFError, zlib.error) as exc:
            raise HistoryError(f"{source}: cannot read: {exc}") from exc
