"""The hostile corpus (corpus.py) through the real command line: each input's exit status
and first line; an error is one line (a malformed history adds one line per problem,
each naming its file and line), never a traceback; nothing outside the case's directory
changes, whatever links the input plants."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.hostile.corpus import CASES, Case, Dir, Fifo, Link
from tests.hostile.invoke import invoke

PROBLEM_LINE = re.compile(r"^(\S+:\d+: |\.\.\. and \d+ more$)")


def materialise(case: Case, directory: Path) -> None:
    for name, content in case.files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, Dir):
            path.mkdir()
        elif isinstance(content, Fifo):
            os.mkfifo(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def assert_one_error(err: str) -> None:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert lines, "exit 2 without saying why"
    assert lines[0].startswith("harness"), lines[0]
    for extra in lines[1:]:
        assert PROBLEM_LINE.match(extra), f"a second line that is no problem line: {extra!r}"


def test_the_corpus_is_large_and_named_uniquely() -> None:
    names = [c.name for c in CASES]
    assert len(names) >= 60
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    directory = tmp_path / "case"
    directory.mkdir()
    materialise(case, directory)
    result = invoke(case.argv, directory)
    shown = f"exit {result.code}\nstdout: {result.out[:2000]}\nstderr: {result.err[:2000]}"
    assert result.code == case.exit, shown
    assert re.match(case.first, result.first_line), shown
    if result.code == 2 and result.err.strip():
        assert_one_error(result.err)
    assert "secret-host-content" not in result.out + result.err, "an error printed a file"
    assert "\x1b" not in result.out + result.err, "a terminal escape printed raw"
    assert outside.read_text() == "precious\n", "a planted link made the harness write outside"
    assert not outside.is_symlink()
