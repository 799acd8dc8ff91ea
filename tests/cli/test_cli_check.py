"""`harness check` / `python -m harness check`: output, --json and exit status."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "split-brain.jsonl"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


VALID = (
    '{"time": 0, "process": "a", "type": "invoke", "f": "acquire"}',
    '{"time": 10, "process": "a", "type": "ok", "f": "acquire", "value": {"token": 1}}',
    '{"time": 20, "process": "a", "type": "info", "f": "lost"}',
)
OVERLAP = (
    *VALID[:2],
    '{"time": 15, "process": "b", "type": "invoke", "f": "acquire"}',
    '{"time": 18, "process": "b", "type": "ok", "f": "acquire", "value": {"token": 2}}',
    VALID[2],
)


def test_valid_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(write(tmp_path / "h.jsonl", *VALID))]) == 0
    assert capsys.readouterr().out.startswith("VALID")


def test_invalid_exits_1_and_lists_violations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(write(tmp_path / "h.jsonl", *OVERLAP))]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID: 1 violation(s)")
    assert "split-brain" in out and "processes a, b" in out and "duration 2 ns" in out


def test_json_prints_exactly_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--json", str(write(tmp_path / "h.jsonl", *OVERLAP))]) == 1
    captured = capsys.readouterr()
    verdict = json.loads(captured.out)
    assert verdict["valid"] is False
    assert [v["kind"] for v in verdict["violations"]] == ["split-brain"]
    assert captured.err == ""


def test_tolerance_option(tmp_path: Path) -> None:
    path = write(tmp_path / "h.jsonl", *OVERLAP)
    assert main(["check", "--tolerance", "1", str(path)]) == 1
    assert main(["check", "--tolerance", "2", str(path)]) == 0


def test_stale_grace_option(tmp_path: Path) -> None:
    path = write(
        tmp_path / "h.jsonl",
        '{"time": 0, "process": "p", "type": "ok", "f": "status",'
        ' "value": {"node": "n2", "leader": "n2", "term": 2}}',
        '{"time": 100, "process": "p", "type": "ok", "f": "status",'
        ' "value": {"node": "n1", "leader": "n1", "term": 1}}',
    )
    assert main(["check", str(path)]) == 1
    assert main(["check", "--stale-grace", "100", str(path)]) == 0


def test_unknown_and_malformed_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nothing = write(
        tmp_path / "n.jsonl", '{"time": 1, "process": "nemesis", "type": "info", "f": "kill"}'
    )
    assert main(["check", str(nothing)]) == 2
    assert "UNKNOWN" in capsys.readouterr().out
    bad = write(
        tmp_path / "bad.jsonl", *VALID, '{"time": 30, "process": "a", "type": "ok", "f": "write"}'
    )
    assert main(["check", "--json", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}:4: ok 'write' by process 'a' completes no open invoke" in captured.err
    assert main(["check", str(tmp_path / "absent.jsonl")]) == 2


def test_bad_options_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path / "h.jsonl", *VALID)
    for args in (["--tolerance", "-5"], ["--stale-grace", "x"], ["--bogus"]):
        with pytest.raises(SystemExit) as exc:
            main(["check", *args, str(path)])
        assert exc.value.code == 2


def test_gzip_input(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(OVERLAP) + "\n").encode()))
    assert main(["check", str(path)]) == 1


def test_module_and_console_script_run_the_example() -> None:
    for argv in (
        [sys.executable, "-m", "harness", "check", "--json", str(EXAMPLE)],
        [str(Path(sys.executable).parent / "harness"), "check", "--json", str(EXAMPLE)],
    ):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert proc.returncode == 1, proc.stderr
        kinds = {v["kind"] for v in json.loads(proc.stdout)["violations"]}
        assert kinds == {"split-brain", "stale-write"}
