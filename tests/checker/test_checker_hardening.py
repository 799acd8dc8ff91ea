"""Checker input bounds and output for people: line length, time range, terminal escapes,
times in seconds, overlapping failovers, streaming vs sorting, and a light `harness check`."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checker import check, check_file
from harness.checker.units import duration, seconds
from harness.cli import main
from harness.history import MalformedHistory, parse_lines, read_history
from harness.history.reader import MAX_LINE_BYTES
from harness.history.synth import correct_history
from harness.reports.timeline import build_model

REPO = Path(__file__).resolve().parents[2]


def lines(*records: dict[str, object]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


ACQ_A = (
    {"time": 0, "process": "a", "type": "invoke", "f": "acquire"},
    {"time": 3_397_000_000, "process": "a", "type": "ok", "f": "acquire", "value": {"token": 1}},
)
OVERLAP = (
    *ACQ_A,
    {"time": 4_000_000_000, "process": "b", "type": "invoke", "f": "acquire"},
    {"time": 8_454_000_000, "process": "b", "type": "ok", "f": "acquire", "value": {"token": 2}},
    {"time": 9_894_000_000, "process": "a", "type": "info", "f": "lost"},
    {"time": 9_900_000_000, "process": "b", "type": "invoke", "f": "release"},
)


def test_seconds_and_durations_read_exactly() -> None:
    assert seconds(3_397_000_000) == "3.397 s"
    assert seconds(10) == "0.00000001 s"
    assert seconds(-5) == "-0.000000005 s"
    assert seconds(2**62 - 1) == "4611686018.427387903 s"
    assert duration(1_440_000_000) == "1.440 s" and duration(2) == "2 ns"
    assert duration(2_000) == "0.002 ms" and duration(None) == "-"


def test_violation_details_give_seconds_from_the_run_start(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(lines(*OVERLAP))
    (sb,) = check_file(path)["violations"]
    assert "leader from 3.397 s until 9.894 s" in sb["detail"]
    assert "believed they led for 1.440 s" in sb["detail"]
    assert (sb["start"], sb["end"]) == (8_454_000_000, 9_894_000_000)  # ns, as before


def test_an_overlapping_failover_reads_as_an_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(lines(*OVERLAP))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "failovers 1, all overlaps (the successor acquired before the old leader let go)" in out
    assert "0 ns" not in out.splitlines()[-1]
    assert main(["check", "--json", str(path)]) == 1
    fo = json.loads(capsys.readouterr().out)["stats"]["failover_ns"]
    assert fo["count"] == 1 and fo["overlapped"] == 1 and fo["max"] == 0


def test_a_line_longer_than_the_bound_is_malformed_with_its_line(tmp_path: Path) -> None:
    long = b'{"time": 1, "process": "a", "type": "info", "f": "x", "value": {"pad": "'
    long += b"x" * (MAX_LINE_BYTES + 10) + b'"}}\n'
    path = tmp_path / "h.jsonl"
    path.write_bytes(lines(*ACQ_A) + long + lines({"time": 5, "process": "c", "type": "x", "f": 1}))
    with pytest.raises(MalformedHistory) as info:
        check_file(path)
    messages = [str(p) for p in info.value.problems]
    assert messages[0].endswith(f":3: line longer than {MAX_LINE_BYTES} bytes")
    assert ":4: field 'type'" in messages[1]  # the lines after it are still read, counted right


def test_one_huge_gzip_line_is_refused_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b'{"time": 1, "process": "a", "type": "info", "f": "x", "value": {"p": "')
        for _ in range(64):
            fh.write(b"x" * (1 << 20))  # 64 MiB of one line, about 64 KiB compressed
        fh.write(b'"}}\n')
    tracemalloc.start()
    try:
        with pytest.raises(MalformedHistory, match="line longer than"):
            check_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * (1 << 20), f"peak {peak} bytes while refusing one long line"


@pytest.mark.parametrize("time", [2**62, -(2**62), 18446744073709551615])
def test_times_beyond_the_range_are_malformed(tmp_path: Path, time: int) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(lines(*ACQ_A, {"time": time, "process": "a", "type": "info", "f": "lost"}))
    with pytest.raises(MalformedHistory, match=r"h.jsonl:3: field 'time' must lie within"):
        check_file(path)


def test_extreme_times_within_the_range_still_write_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    low, high = -(2**62) + 1, 2**62 - 1
    path = tmp_path / "h.jsonl"
    path.write_bytes(
        lines(
            {"time": low, "process": "a", "type": "invoke", "f": "acquire"},
            {"time": low + 1, "process": "a", "type": "ok", "f": "acquire", "value": {"token": 1}},
            {"time": high, "process": "b", "type": "invoke", "f": "acquire"},
        )
    )
    assert main(["check", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["span_ns"] == high - low


def test_huge_tolerance_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(lines(*OVERLAP))
    with pytest.raises(SystemExit) as info:
        main(["check", "--tolerance", str(10**26), str(path)])
    assert info.value.code == 2
    assert "one hour" in capsys.readouterr().err
    with pytest.raises(ValueError, match="2\\*\\*62"):
        check_file(path, tolerance_ns=10**26)


def test_control_characters_in_names_are_escaped_in_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "\x1b]0;owned\x07\x1b[2J"
    path = tmp_path / "h.jsonl"
    records = [dict(r) for r in OVERLAP]
    for r in records:
        r["process"] = evil + str(r["process"]) if r["process"] == "a" else r["process"]
    path.write_bytes(lines(*records))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07" in out
    # --json stays exact: JSON escapes them itself, and a parser gets the name back
    assert main(["check", "--json", str(path)]) == 1
    captured = capsys.readouterr().out
    assert "\x1b" not in captured
    assert evil + "a" in json.loads(captured)["violations"][0]["processes"]
    # errors too: a malformed line quoting the name
    path.write_bytes(lines({"time": 1, "process": evil, "type": "ok", "f": "acquire"}))
    assert main(["check", str(path)]) == 2
    assert "\x1b" not in capsys.readouterr().err


def test_a_node_named_with_a_non_ascii_digit_is_drawn() -> None:
    def status(time: int, node: str) -> dict[str, object]:
        value = {"node": node, "leader": None, "term": 1}
        return {"time": time, "process": f"s-{node}", "type": "ok", "f": "status", "value": value}

    records = [status(1, "n10"), status(2, "n2²"), status(3, "n2"), status(4, "n1²0")]
    events = parse_lines([orjson.dumps(r) for r in records])
    model = build_model(events, check(events))
    assert model["lanes"] == ["n1²0", "n2", "n2²", "n10"]


def test_streamed_unsorted_and_in_memory_checks_agree(tmp_path: Path) -> None:
    records = correct_history(random.Random(7), leaderships=40, writes_per_leadership=3)
    end = records[-1]["time"]
    invoke = {"time": end + 1, "process": "z", "type": "invoke", "f": "acquire"}
    ok = {"time": end + 2, "process": "z", "type": "ok", "f": "acquire", "value": {"token": 0}}
    records.insert(len(records) // 2, invoke)  # out of time order in the file
    records.append(ok)
    expected = check(parse_lines([orjson.dumps(r) for r in records]))
    assert "token-regression" in {v["kind"] for v in expected["violations"]}
    sorted_path, shuffled_path = tmp_path / "sorted.jsonl", tmp_path / "shuffled.jsonl"
    sorted_path.write_bytes(lines(*sorted(records, key=lambda r: r["time"])))
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    shuffled_path.write_bytes(lines(*shuffled))

    def without_lines(verdict: dict[str, object]) -> bytes:
        for v in verdict["violations"]:  # type: ignore[attr-defined]
            for e in v["events"]:
                e.pop("line")
        return orjson.dumps(verdict)

    assert without_lines(check_file(sorted_path)) == without_lines(dict(expected))
    assert without_lines(check_file(shuffled_path)) == without_lines(
        check(read_history(shuffled_path))
    )


def test_harness_check_imports_none_of_the_run_libraries() -> None:
    code = (
        "import sys; from harness.cli import main; rc = main(['check', sys.argv[1]]);"
        "heavy = ('docker', 'httpx', 'jinja2', 'rich', 'yaml', 'consul', 'paramiko');"
        "print(sorted(m for m in heavy if m in sys.modules)); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "examples" / "valid.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


@given(st.lists(st.binary(max_size=25).map(lambda b: b.replace(b"\n", b"")), max_size=30))
@settings(max_examples=300)
def test_line_chunks_split_like_splitlines_and_bound_every_line(parts: list[bytes]) -> None:
    import io

    from harness.history import reader

    limit = 10
    saved = reader.MAX_LINE_BYTES, reader._CHUNK_BYTES
    reader.MAX_LINE_BYTES = reader._CHUNK_BYTES = limit
    try:
        data = b"\n".join(parts)
        got = [line for chunk in reader.line_chunks(io.BytesIO(data)) for line in chunk]
    finally:
        reader.MAX_LINE_BYTES, reader._CHUNK_BYTES = saved
    expected = [None if len(p) > limit else p for p in data.split(b"\n")]
    if expected and expected[-1] == b"":
        expected.pop()  # a final newline ends the last line; it does not start one
    assert got == expected
