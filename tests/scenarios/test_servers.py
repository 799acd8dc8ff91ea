"""Scenario runs of etcd and Consul (in containers by default) under the selected nemeses.

    pytest --target=etcd --nemesis=partition        # or consul; pause, kill, clock, ...

Guarded candidates with fencing must come out valid under whatever faults are selected.
The unsafe setups must be caught by the fault that exposes them (configs/detection/):
naive candidates under `pause` (Jepsen's etcd lock finding), and for etcd a guarded
candidate whose clock runs slow under `clock`. Detection is statistical (about 19 runs
in 20), so an unsafe setup gets up to three seeded runs. Clock faults on the servers
themselves are refused: they are Go programs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.options import RunOptions
from harness.pytest_plugin import HarnessCouldNotRun
from tests.scenarios.outcomes import assert_caught, describe, selected

pytestmark = [pytest.mark.scenario, pytest.mark.integration]

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SERVER_TARGETS = ("etcd", "consul")
# (target, nemesis) -> the detection configuration whose unsafe setup that fault exposes
EXPOSED_BY = {
    ("etcd", "pause"): "etcd-naive-pause.yaml",
    ("consul", "pause"): "consul-naive-pause.yaml",
    ("etcd", "clock"): "etcd-guarded-slow-clock.yaml",
}


@pytest.fixture
def server_target(harness_options: RunOptions) -> RunOptions:
    if harness_options.target not in SERVER_TARGETS:
        pytest.skip("etcd/Consul scenarios: select with --target=etcd or --target=consul")
    return harness_options


def test_guarded_with_fencing_is_valid(harness_run: Any, server_target: RunOptions) -> None:
    outcome = harness_run(CONFIGS / server_target.target / "guarded.yaml")
    assert outcome.error is None, describe(outcome)
    assert outcome.exit_code == 0, describe(outcome)
    assert outcome.verdict["valid"] is True, describe(outcome)
    assert outcome.verdict["stats"]["acquisitions"] > 0, "no candidate ever led"


@pytest.mark.parametrize("nemesis", ["pause", "clock"])
def test_unsafe_setup_is_caught(harness_run: Any, server_target: RunOptions, nemesis: str) -> None:
    if nemesis not in selected(server_target.nemeses):
        pytest.skip(f"exposed by --nemesis={nemesis}")
    name = EXPOSED_BY.get((server_target.target, nemesis))
    if name is None:
        pytest.skip(f"no detection configuration for {server_target.target} under {nemesis}")
    config = CONFIGS / "detection" / name
    # The detection configuration names its own faults and length; only the seed varies.
    assert_caught(harness_run, config, server_target.seed, time_limit=None)


def test_clock_faults_on_go_servers_are_refused(
    harness_run: Any, server_target: RunOptions, tmp_path: Path
) -> None:
    if "clock" not in selected(server_target.nemeses):
        pytest.skip("select with --nemesis=clock (or all)")
    config = yaml.safe_load((CONFIGS / server_target.target / "guarded.yaml").read_text())
    config["nemesis"]["clock"] = {"processes": "member"}
    path = tmp_path / "member-clock.yaml"
    path.write_text(yaml.safe_dump(config))
    # Named on its own: under `all` a refused nemesis is left out, not an error. A
    # refused run could not run: the fixture raises, naming the reason.
    with pytest.raises(HarnessCouldNotRun) as refused:
        harness_run(path, nemeses=("clock",))
    assert "vDSO" in str(refused.value) and "processes: candidate" in str(refused.value)
