"""Real runs side by side and sharded, on the local backend: `--jobs 2` isolates
concurrent runs (their own networks and names, nothing left behind), shards merged give
the verdicts of one unsharded run, and SIGTERM during `--jobs` tears every running run
down. Needs root (network namespaces); about 2 minutes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.backends import netns as nx

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local backend needs root"),
]

ROOT = Path(__file__).resolve().parents[2]
SUITE = f"""
name: tiny
defaults: {{runs: 2, time_limit: 4, quiet_s: 1}}
cases:
  - name: safe/partition
    config: {ROOT}/configs/reference/safe.yaml
    nemesis: {{faults: [partition]}}
  - name: safe/kill
    config: {ROOT}/configs/reference/safe.yaml
    nemesis: {{faults: [kill]}}
"""


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_ids(directory: Path) -> set[str]:
    return {yaml.safe_load(p.read_text())["run_id"] for p in directory.glob("*/*/config.yaml")}


def live_state_run_ids() -> set[str]:
    return {
        st.run_id for _, st in nx.read_states(nx.DEFAULT_STATE_DIR) if isinstance(st, nx.RunState)
    }


def verdicts(directory: Path) -> dict[str, object]:
    data = json.loads((directory / "suite.json").read_text())
    return {
        c["name"]: (c["passed"], [(r["seed"], r["valid"]) for r in c["runs"]])
        for c in data["cases"]
    }


def test_jobs_shards_and_merge_with_real_runs(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE)
    whole = harness(
        "suite", str(suite), "--backend", "local", "--jobs", "2", "--store", "w", cwd=tmp_path
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    (whole_dir,) = (tmp_path / "w").glob("suite-tiny-*")
    ids = run_ids(whole_dir)
    assert len(ids) == 4  # every run its own id, hence its own names and /24
    assert not ids & live_state_run_ids()  # nothing of these runs left on the host
    for k in (1, 2):
        shard = harness(
            "suite", str(suite), "--backend", "local", "--jobs", "2", "--shard", f"{k}/2",
            "--store", f"s{k}", cwd=tmp_path,
        )  # fmt: skip
        assert shard.returncode == 0, shard.stderr[-3000:]
    dirs = [str(next((tmp_path / f"s{k}").glob("suite-tiny-*"))) for k in (1, 2)]
    merged = harness("suite", "merge", *dirs, "--out", "merged", cwd=tmp_path)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert verdicts(tmp_path / "merged") == verdicts(whole_dir)


def test_sigterm_during_jobs_tears_down_every_running_run(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE.replace("time_limit: 4", "time_limit: 60"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "suite", str(suite), "--backend", "local",
         "--jobs", "2", "--store", "s"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # Wait until both running runs have their networks (their state files exist).
        while time.monotonic() < deadline:
            dirs = list((tmp_path / "s").glob("suite-tiny-*"))
            if dirs and len(run_ids(dirs[0]) & live_state_run_ids()) == 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the two runs never got their networks")
        ids = run_ids(dirs[0])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err[-3000:]
    assert "interrupted by SIGTERM" in err
    assert not ids & live_state_run_ids()  # both runs removed everything they made
