"""The harness used the way a team uses it: a wheel installed into a fresh venv outside
this repository, `harness init` in an empty project, then `pytest --target=etcd
--nemesis=partition` running the starter test in containers (the node image is built
from the installed distribution, no checkout). Needs a Docker daemon and PyPI (for the
wheel's dependencies; pip's cache makes a second time fast). A few minutes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.docker import daemon_answers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not daemon_answers(), reason="needs a Docker daemon"),
]

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_installed_wheel_runs_an_etcd_scenario_in_containers(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    done = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT),
                 "--wheel-dir", str(wheels)], tmp_path, 600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path, 120).returncode == 0
    wheel = next(wheels.glob("leader_harness-*.whl"))
    done = _run([str(venv / "bin/pip"), "install", "--quiet", str(wheel), "pytest"], tmp_path, 900)
    assert done.returncode == 0, done.stderr
    project = tmp_path / "project"
    project.mkdir()
    done = _run([str(venv / "bin/harness"), "init"], project, 120)
    assert done.returncode == 0, done.stderr
    assert (project / "tests/test_leader_harness.py").is_file()
    done = _run(
        [str(venv / "bin/pytest"), "-p", "no:cacheprovider", "--target=etcd",
         "--nemesis=partition", "--time-limit=10", "--backend=docker"],
        project, 1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    # It ran from the installed copy, not this checkout.
    where = _run([str(venv / "bin/python"), "-c", "import harness; print(harness.__file__)"],
                 project, 60)  # fmt: skip
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout
