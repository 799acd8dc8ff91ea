"""History I/O: gzip and plain reading, the append-only writer, merging per-node files."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from harness.history import (
    HistoryError,
    HistoryWriter,
    MalformedHistory,
    merge_histories,
    read_history,
)


def record(t: int, p: object = "a", f: str = "x", etype: str = "info") -> dict[str, object]:
    return {"time": t, "process": p, "type": etype, "f": f}


def test_plain_and_gzip_read_the_same(tmp_path: Path) -> None:
    data = b"".join(orjson.dumps(record(t)) + b"\n" for t in range(5)) + b"\n\n"
    (tmp_path / "h.jsonl").write_bytes(data)
    (tmp_path / "h.jsonl.gz").write_bytes(gzip.compress(data))
    # A gzip file is recognised by content, whatever its name.
    (tmp_path / "misnamed.jsonl").write_bytes(gzip.compress(data))
    plain = read_history(tmp_path / "h.jsonl")
    assert [e.time for e in plain] == [0, 1, 2, 3, 4]
    assert read_history(tmp_path / "h.jsonl.gz") == plain
    assert read_history(tmp_path / "misnamed.jsonl") == plain


def test_missing_and_corrupt_files_are_history_errors(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot open"):
        read_history(tmp_path / "absent.jsonl")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"time": 1}\n' * 100)[:30])
    with pytest.raises(HistoryError, match=str(bad)):
        read_history(bad)


def test_malformed_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(orjson.dumps(record(1)) + b"\n{oops\n")
    with pytest.raises(MalformedHistory) as err:
        read_history(path)
    assert f"{path}:2: not valid JSON" in str(err.value)


def test_writer_numbers_events_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryWriter(path) as writer:
        for t in range(3):
            writer.append(record(t))
    events = read_history(path)
    assert [e.index for e in events] == [0, 1, 2]
    with pytest.raises(ValueError, match="closed"):
        writer.append(record(9))


def test_writer_is_safe_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryWriter(path) as writer:

        def work(p: int) -> None:
            for t in range(500):
                writer.append(record(t, p=p))

        threads = [threading.Thread(target=work, args=(p,)) for p in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    events = read_history(path)
    assert len(events) == 2000
    assert [e.index for e in events] == list(range(2000))


def test_writer_fsyncs_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = threading.Event()
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.set()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    writer = HistoryWriter(tmp_path / "h.jsonl")
    try:
        writer.append(record(1))
        # No close, no flush: the background thread must fsync within 100 ms.
        assert synced.wait(timeout=2.0)
    finally:
        writer.close()


def test_a_killed_writer_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    code = f"""
import os, signal
from harness.history import HistoryWriter
w = HistoryWriter({str(path)!r})
for t in range(1000):
    w.append({{"time": t, "process": "a", "type": "info", "f": "x"}})
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert len(read_history(path)) == 1000


def test_merge_orders_by_time_and_renumbers(tmp_path: Path) -> None:
    a, b = tmp_path / "n1.jsonl", tmp_path / "n2.jsonl"
    with HistoryWriter(a) as w:
        for t in (1, 4, 6):
            w.append(record(t, p="a"))
    with HistoryWriter(b) as w:
        for t in (2, 4, 5):
            w.append(record(t, p="b"))
    out = tmp_path / "history.jsonl"
    merged = merge_histories([a, b], out)
    assert [(e.time, e.process) for e in merged] == [
        (1, "a"),
        (2, "b"),
        (4, "a"),
        (4, "b"),
        (5, "b"),
        (6, "a"),
    ]
    again = read_history(out)
    assert [e.index for e in again] == list(range(6))
    assert [(e.time, e.process) for e in again] == [(e.time, e.process) for e in merged]


def test_merge_reports_problems_of_every_input(tmp_path: Path) -> None:
    a, b = tmp_path / "n1.jsonl", tmp_path / "n2.jsonl"
    a.write_bytes(b"nope\n")
    b.write_bytes(orjson.dumps(record(1)) + b"\n" + b"[]\n")
    with pytest.raises(MalformedHistory) as err:
        merge_histories([a, b], tmp_path / "out.jsonl")
    text = str(err.value)
    assert f"{a}:1:" in text and f"{b}:2:" in text
    assert not (tmp_path / "out.jsonl").exists()
