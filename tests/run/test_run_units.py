"""Runner pieces without a cluster: run directories, the stale-leader grace it checks with."""

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


def test_stale_grace_grows_by_the_longest_member_pause() -> None:
    from harness.nemesis.base import FaultPlan
    from harness.run.runner import longest_member_pause_ns

    plans = [
        FaultPlan("pause", "candidate", 1.0, 9.0, 1),  # a candidate: no member frozen
        FaultPlan("pause", "member", 2.0, 3.5, 2),
        FaultPlan("pause", "both", 8.0, 4.25, 3),
        FaultPlan("partition", "one", 3.0, 7.0, 4),
    ]
    assert longest_member_pause_ns(plans) == 4_250_000_000
    assert longest_member_pause_ns(plans[:1] + plans[3:]) == 0
