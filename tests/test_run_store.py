"""Run directories: where a run's files go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.run.store import new_run_dir


def test_run_directory_is_absolute_even_for_a_relative_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = new_run_dir(Path("store"), "etcd", ("pause",), 3, "abcd1234")
    assert run_dir.is_absolute()
    assert run_dir.parent == tmp_path / "store"
    assert run_dir.name.endswith("-etcd-pause-s3-abcd")
    assert all((run_dir / sub).is_dir() for sub in ("history", "logs", "nodes"))
    assert os.readlink(tmp_path / "store" / "latest") == run_dir.name
