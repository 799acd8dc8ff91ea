"""The streaming pass's own promises: what it holds does not grow with the writes and
status observations of a history, a cited line is read again from the file, and a file
changed meanwhile is an error rather than a verdict."""

from __future__ import annotations

import io
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from harness.checker import check_file
from harness.checker.stream import Stream
from harness.history import HistoryError
from harness.history.synth import correct_history


def _file(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _held_after_reading(data: bytes) -> int:
    """Bytes still allocated by a stream that has read `data` (before its verdict)."""
    tracemalloc.start()
    try:
        stream = Stream("h", 0, 0, lines=lambda wanted: {})
        before = tracemalloc.get_traced_memory()[0]
        assert stream.read(io.BytesIO(data))
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_writes() -> None:
    """Ten times the writes per leadership (the bulk of a real history) leave the held
    memory about the same: writes are judged and dropped, not kept."""
    few = correct_history(random.Random(5), leaderships=40, writes_per_leadership=5)
    many = correct_history(random.Random(5), leaderships=40, writes_per_leadership=50)
    writes = sum(r["f"] == "write" for r in many) - sum(r["f"] == "write" for r in few)
    assert writes > 3000
    grown = _held_after_reading(_file(many)) - _held_after_reading(_file(few))
    # Kept writes would cost 100 bytes or more each; the histories differ a little
    # otherwise (the same seed draws differently), hence a margin rather than zero.
    assert grown < 10 * writes


def test_a_cited_grant_is_read_again_from_the_file(tmp_path: Path) -> None:
    records = [
        {"time": 1, "process": 1, "type": "invoke", "f": "acquire"},
        {"time": 2, "process": 1, "type": "ok", "f": "acquire", "value": {"token": 3}},
        {"time": 3, "process": 2, "type": "invoke", "f": "acquire"},
        {"time": 4, "process": 2, "type": "ok", "f": "acquire", "value": {"token": 3}},
    ]
    path = tmp_path / "h.jsonl"
    path.write_bytes(_file(records))
    verdict = check_file(path)
    kinds = {v["kind"]: v for v in verdict["violations"]}
    assert [e["line"] for e in kinds["duplicate-token"]["events"]] == [2, 4]
    assert kinds["duplicate-token"]["events"][0]["value"] == {"token": 3}


def test_a_history_changed_while_checked_is_an_error() -> None:
    records = [
        {"time": 1, "process": 1, "type": "invoke", "f": "acquire"},
        {"time": 2, "process": 1, "type": "ok", "f": "acquire", "value": {"token": 3}},
        {"time": 3, "process": 2, "type": "invoke", "f": "acquire"},
        {"time": 4, "process": 2, "type": "ok", "f": "acquire", "value": {"token": 3}},
    ]
    other = b'{"time": 9, "process": 1, "type": "info", "f": "x"}'
    stream = Stream("h.jsonl", 0, 0, lines=lambda wanted: dict.fromkeys(wanted, other))
    assert stream.read(io.BytesIO(_file(records)))
    with pytest.raises(HistoryError, match=r"h.jsonl:2: the history changed"):
        stream.verdict()
