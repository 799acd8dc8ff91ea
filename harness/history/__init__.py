"""History format v1 (docs/HISTORY.md): events, reading, writing and merging.

`read_history` parses plain or gzip JSON Lines into `Event`s, `HistoryWriter` appends a
process's events as they happen, and `merge_histories` joins per-node files into one
ordered history.
"""

from typing import TYPE_CHECKING, Any

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
from harness.history.reader import parse_lines, read_history

if TYPE_CHECKING:
    from harness.history.merge import merge_histories
    from harness.history.writer import HistoryWriter


def __getattr__(name: str) -> Any:
    # Writing and merging are imported when first used: `harness check`, which only
    # reads, then starts without them (and the file-safety module they bring).
    if name == "merge_histories":
        from harness.history.merge import merge_histories

        return merge_histories
    if name == "HistoryWriter":
        from harness.history.writer import HistoryWriter

        return HistoryWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
