"""`holding_since`: which candidate holds the election, read from its history's tail."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness.run.cluster import TAIL_BYTES, holding_since


def write(path: Path, events: list[tuple[int, str, str]], tail: bytes = b"") -> Path:
    lines = [
        orjson.dumps({"time": t, "process": 1, "type": etype, "f": f}) for t, etype, f in events
    ]
    path.write_bytes(b"\n".join(lines) + b"\n" + tail)
    return path


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([(1, "invoke", "acquire"), (2, "ok", "acquire")], 2),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "invoke", "write")], 2),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "info", "lost")], None),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "invoke", "release")], None),
        ([(1, "invoke", "acquire"), (2, "ok", "acquire"), (3, "ok", "release")], None),
        ([(1, "invoke", "acquire"), (2, "fail", "acquire")], None),
        ([(2, "ok", "acquire"), (3, "info", "lost"), (4, "invoke", "acquire")], None),
        ([], None),
    ],
)
def test_latest_word_on_the_election(
    tmp_path: Path, events: list[tuple[int, str, str]], expected: int | None
) -> None:
    assert holding_since(write(tmp_path / "p1.jsonl", events)) == expected


def test_a_half_written_line_and_a_long_file(tmp_path: Path) -> None:
    writes = [(10 + i, "invoke", "write") for i in range(TAIL_BYTES // 40)]
    path = write(
        tmp_path / "p1.jsonl",
        [(1, "invoke", "acquire"), (2, "ok", "acquire"), *writes],
        tail=b'{"time": 99999, "process": 1, "ty',
    )
    assert path.stat().st_size > TAIL_BYTES
    # The acquisition is far behind the tail: read back until it is found.
    assert holding_since(path) == 2
    path = write(tmp_path / "p2.jsonl", [(1, "invoke", "acquire"), (2, "ok", "acquire")], b'{"ti')
    assert holding_since(path) == 2
    assert holding_since(tmp_path / "missing.jsonl") is None
