"""`harness run` end to end on the docker backend: the reference elector and etcd in
containers; SIGTERM heals and removes everything; a killed harness's containers and
network are found by label and removed by the next run.

Leftovers are checked by the run's label on the daemon and by command lines on the host
(container processes are visible in the host's /proc).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from harness.backends import docker as dk
from harness.backends.docker import LABEL_RUN
from harness.history import read_history
from tests.run.test_run_integration import (
    PAUSE_SOON,
    WORKLOAD_PHASE,
    config,
    pids_mentioning,
    results,
    runs,
    wait_for_stopped,
    yaml_run_id,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not dk.daemon_answers(), reason="no Docker daemon answers"),
]
__all__ = ["runs"]  # the fixture, shared with the local backend's end-to-end tests


@pytest.fixture(autouse=True)
def remove_what_a_failed_test_left() -> Any:
    """After `runs` has killed the harness processes of the test, their runs' owners are
    gone: the same clean-up a next run does removes whatever they left."""
    yield
    dk.clean_leftovers()


def labelled(run_id: str) -> list[str]:
    client = docker.from_env()
    try:
        filters = {"label": [f"{LABEL_RUN}={run_id}"]}
        return [
            f"container {c.name}" for c in client.containers.list(all=True, filters=filters)
        ] + [f"network {n.name}" for n in client.networks.list(filters=filters)]
    finally:
        client.close()


def wait_labelled(run_dir_of: Any, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            run_id = yaml_run_id(run_dir_of())
        except (OSError, AssertionError):
            time.sleep(0.1)
            continue
        if labelled(run_id):
            return run_id
        time.sleep(0.1)
    raise AssertionError("the run created no labelled containers")


@pytest.mark.parametrize("version", ["3.5.16", "3.4.23"])
def test_etcd_in_containers_without_faults(runs: Any, tmp_path: Path, version: str) -> None:
    cfg = config(tmp_path, f"target: etcd\nquiet_s: 0.5\nserver: {{version: '{version}'}}\n")
    run = runs("store", "--config", cfg, "--backend", "docker", "--nemesis", "none",
               "--time-limit", "5", "--seed", "3")  # fmt: skip
    assert run.wait(timeout=300) == 0, run.stderr()
    assert "backend: docker (as requested)" in run.stderr()
    # The containers ran the node image plus a layer with this version's server only.
    from harness.image.build import SERVERS_REPO, run_plan
    from harness.image.servers import SERVERS

    image = run_plan([SERVERS[f"etcd-{version}"]]).image
    assert image.startswith(SERVERS_REPO + ":") and f"run image {image}" in run.stderr()
    run_dir = run.run_dir
    res = results(run_dir)
    assert res["verdict"]["valid"] is True and res["backend"] == "docker"
    assert res["verdict"]["stats"]["acquisitions"] >= 1
    events = read_history(run_dir / "history.jsonl")
    tokens = [e.value["token"] for e in events if e.f == "acquire" and e.type == "ok"]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)  # leader.rev rises
    assert any(e.f == "status" and e.value["leader"] for e in events)
    log = (run_dir / "logs" / "n1-etcd.log").read_text()  # node logs collected
    assert version in log
    assert labelled(yaml_run_id(run_dir)) == []
    assert pids_mentioning(str(run.store)) == {}


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_signal_heals_and_removes_the_containers(
    runs: Any, tmp_path: Path, signum: signal.Signals
) -> None:
    cfg = config(tmp_path, PAUSE_SOON)
    run = runs("store", "--config", cfg, "--backend", "docker", "--time-limit", "30",
               "--seed", "5")  # fmt: skip
    run.wait_for(WORKLOAD_PHASE, timeout=300)
    run_id = wait_labelled(lambda: run.run_dir)
    assert len(labelled(run_id)) == 4  # three containers and their network
    wait_for_stopped(run.store)  # a reference elector or candidate is frozen now
    os.kill(run.proc.pid, signum)
    assert run.wait(timeout=30) == 2, run.stderr()
    assert f"interrupted by {signum.name}" in run.stderr()
    assert labelled(run_id) == []
    assert pids_mentioning(str(run.store)) == {}
    assert results(run.run_dir)["error"] == f"interrupted by {signum.name}"


def test_a_killed_harness_leaves_labels_the_next_run_removes(runs: Any, tmp_path: Path) -> None:
    cfg = config(tmp_path, PAUSE_SOON)
    first = runs("first", "--config", cfg, "--backend", "docker", "--time-limit", "30",
                 "--seed", "6")  # fmt: skip
    first.wait_for(WORKLOAD_PHASE, timeout=300)
    run_id = wait_labelled(lambda: first.run_dir)
    os.kill(first.proc.pid, signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert len(labelled(run_id)) == 4

    cfg2 = config(tmp_path, "quiet_s: 0.5\n")
    second = runs("second", "--config", cfg2, "--backend", "docker", "--nemesis", "none",
                  "--time-limit", "3")  # fmt: skip
    assert second.wait(timeout=300) == 0, second.stderr()
    err = second.stderr()
    assert "cleaned leftover of a crashed run" in err and f"run {run_id}:" in err
    assert labelled(run_id) == []
    assert pids_mentioning(str(first.store)) == {}
