"""Running the real `harness` entry point (`harness.cli.main`) in-process, capturing what
it prints, as a user's shell would see it; shared by the corpus and the fuzz tests."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import cli


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def first_line(self) -> str:
        """An error's first line (stderr), else the verdict's (stdout)."""
        text = self.err if self.code == 2 and self.err.strip() else self.out
        return text.splitlines()[0] if text.strip() else ""


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    out, err = io.BytesIO(), io.BytesIO()
    old = sys.stdout, sys.stderr
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    try:
        yield out, err
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
            stream.detach()  # keep the BytesIO open once the wrapper is collected  # type: ignore[union-attr]
        sys.stdout, sys.stderr = old


def invoke(argv: Sequence[str], cwd: Path) -> Result:
    """`harness ARGV` in `cwd`: its exit status (argparse's SystemExit included)."""
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with _captured() as (out, err):
            try:
                code = cli.main(list(argv))
            except SystemExit as exc:  # argparse: usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(here)
    return Result(code, out.getvalue().decode(), err.getvalue().decode())
