"""Merging per-node history files into one history ordered by the reference clock.

Every input is validated first. The output is sorted by (time, input file, file line)
and re-numbered with a fresh `index`, since per-file indexes restart in every file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import orjson

from harness.history.events import Event, HistoryError, MalformedHistory
from harness.history.reader import parse_lines
from harness.safefile import open_read, write_atomic


def merge_histories(
    inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str]
) -> list[Event]:
    """Merge `inputs` into `output` (overwritten); returns the merged events in order."""
    keyed: list[tuple[int, int, int, Event]] = []
    problems = []
    for file_no, path in enumerate(inputs):
        try:
            events = _read_part(path)
        except MalformedHistory as exc:
            problems.extend(exc.problems)
            continue
        keyed.extend((event.time, file_no, event.line, event) for event in events)
    if problems:
        raise MalformedHistory(problems)
    keyed.sort(key=lambda item: item[:3])
    merged: list[Event] = []
    lines: list[bytes] = []
    for position, (_, _, _, event) in enumerate(keyed):
        record = event.to_dict()
        record["index"] = position
        lines.append(orjson.dumps(record) + b"\n")
        merged.append(Event.from_dict(record, position + 1))
    write_atomic(output, b"".join(lines))
    return merged


def _read_part(path: str | os.PathLike[str]) -> list[Event]:
    """One process's history file: written by a node, so opened without following a
    link planted in its place (a FIFO or device is refused too)."""
    source = os.fspath(path)
    try:
        with open_read(path) as fh:
            return parse_lines(fh, source)
    except OSError as exc:
        raise HistoryError(f"{source}: cannot read: {exc.strerror or exc}") from exc
