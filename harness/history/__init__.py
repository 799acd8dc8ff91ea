"""History format v1 (shared/HISTORY.md): events, reading, writing and merging.

`read_history` parses plain or gzip JSON Lines into `Event`s, `HistoryWriter` appends a
process's events as they happen, and `merge_histories` joins per-node files into one
ordered history.
"""

from harness.history.events import (
    COMPLETION_TYPES,
    DEFAULT_ELECTION,
    EVENT_TYPES,
    NEMESIS,
    Event,
    HistoryError,
    MalformedHistory,
    Problem,
)
from harness.history.merge import merge_histories
from harness.history.reader import parse_lines, read_history
from harness.history.writer import HistoryWriter

__all__ = [
    "COMPLETION_TYPES",
    "DEFAULT_ELECTION",
    "EVENT_TYPES",
    "NEMESIS",
    "Event",
    "HistoryError",
    "HistoryWriter",
    "MalformedHistory",
    "Problem",
    "merge_histories",
    "parse_lines",
    "read_history",
]
