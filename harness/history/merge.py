"""Merging per-node history files into one history ordered by the reference clock.

Every input is validated first. The output is sorted by (time, input file, file line)
and re-numbered with a fresh `index`, since per-file indexes restart in every file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from harness.history.events import Event, MalformedHistory
from harness.history.reader import read_history
from harness.history.writer import HistoryWriter


def merge_histories(
    inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str]
) -> list[Event]:
    """Merge `inputs` into `output` (overwritten); returns the merged events in order."""
    keyed: list[tuple[int, int, int, Event]] = []
    problems = []
    for file_no, path in enumerate(inputs):
        try:
            events = read_history(path)
        except MalformedHistory as exc:
            problems.extend(exc.problems)
            continue
        keyed.extend((event.time, file_no, event.line, event) for event in events)
    if problems:
        raise MalformedHistory(problems)
    keyed.sort(key=lambda item: item[:3])
    merged: list[Event] = []
    tmp = f"{os.fspath(output)}.tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    with HistoryWriter(tmp, add_index=False) as writer:
        for position, (_, _, _, event) in enumerate(keyed):
            record = event.to_dict()
            record["index"] = position
            writer.append(record)
            merged.append(Event.from_dict(record, position + 1))
    os.replace(tmp, output)
    return merged
