"""Suites at scale with runs replaced by fakes: `--jobs N` (same verdicts as one at a
time, interruption), `--shard K/N` (a deterministic, balanced split) and `harness suite
merge` (the same verdicts as one unsharded run; bad input exits 2). No cluster; seconds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.runconfig import RunConfig
from harness.suite import runner as suite_runner
from harness.suite.jobs import auto_jobs, parse_jobs
from harness.suite.model import load_suite
from harness.suite.runner import expected_duration_s
from harness.suite.shard import parse_shard, plan_shards
from harness.testing.suite import FakeRuns, verdict

ROOT = Path(__file__).resolve().parents[2]

# Cases of different lengths and verdicts (one fails its expectation on some seeds), so
# that a split or a merge that loses, repeats or mixes up runs changes the result.
SUITE = f"""
name: scale
defaults: {{runs: 5, time_limit: 5}}
cases:
  - name: safe-long
    config: {ROOT}/configs/reference/safe.yaml
    time_limit: 40
    expect: {{valid: true, failover_p99_s: 1}}
  - name: safe-short
    config: {ROOT}/configs/reference/safe.yaml
    nemesis: {{faults: [partition]}}
    runs: 7
  - name: unsafe
    config: {ROOT}/configs/detection/no-persist-kill.yaml
    expect: {{caught_at_least: 0.75}}
  - name: flaky-safe
    config: {ROOT}/configs/reference/safe.yaml
    nemesis: {{faults: [kill]}}
    time_limit: 12
    runs: 4
    expect: {{valid: true, failover_p99_s: 1}}
"""


def decide(cfg: RunConfig) -> Any:
    """Deterministic per (configuration, seed): unsafe caught on seeds but 2; the kill
    case has a slow failover on seed 3; everything else valid and quick."""
    if cfg.server.get("persist_votes") is False:
        return verdict() if cfg.seed == 2 else verdict(kinds=("duplicate-token",))
    if "kill" in cfg.nemeses and cfg.seed == 3:
        return verdict(p99_ms=9_000)
    return verdict(p99_ms=100 + cfg.seed)


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "scale.yaml"
    path.write_text(SUITE)
    return path


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> FakeRuns:
    fake = FakeRuns(decide)
    monkeypatch.setattr(suite_runner, "execute_run", fake)
    return fake


def harness(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def only_dir(store: Path) -> Path:
    (directory,) = [p for p in store.glob("suite-scale-*") if "merged" not in p.name]
    return directory


def summary(directory: Path) -> dict[str, Any]:
    """What must not depend on how the suite was run: every case's verdict, figures and
    its runs' seeds and judgements."""
    data = json.loads((directory / "suite.json").read_text())
    return {
        c["name"]: (
            c["passed"],
            c["failures"],
            {k: v for k, v in c["figures"].items()},
            [(r["seed"], r["valid"], r["violation_kinds"]) for r in c["runs"]],
        )
        for c in data["cases"]
    }


# ----------------------------------------------------------------------------- --jobs


def test_jobs_gives_the_same_verdicts_as_one_at_a_time(
    tmp_path: Path, suite_file: Path, runs: FakeRuns, capsys: Any
) -> None:
    code1, _, _ = harness(capsys, "suite", str(suite_file), "--store", str(tmp_path / "a"))
    assert set(runs.children) == {None}  # one at a time: in this process
    runs.children.clear()
    code3, _, err = harness(
        capsys, "suite", str(suite_file), "--store", str(tmp_path / "b"), "--jobs", "3"
    )
    assert code1 == code3 == 1  # flaky-safe's seed 3 fails over too slowly
    assert "21 run(s), 3 at a time" in err
    # Side by side, every run got the registry of child processes (the real seam runs it
    # in a child process of its own).
    assert len(runs.children) == 21 and None not in runs.children
    assert summary(only_dir(tmp_path / "a")) == summary(only_dir(tmp_path / "b"))
    failed = [k for k, v in summary(only_dir(tmp_path / "b")).items() if not v[0]]
    assert failed == ["flaky-safe"]


def test_jobs_start_longest_first(
    tmp_path: Path, suite_file: Path, runs: FakeRuns, capsys: Any
) -> None:
    harness(capsys, "suite", str(suite_file), "--store", str(tmp_path), "--jobs", "2")
    limits = [cfg.time_limit for cfg in runs.calls]
    # Two threads take tasks from one queue in order: starts are (nearly) longest first.
    assert limits[:5] == [40.0] * 5 and limits[-1] == 5.0


def test_jobs_interrupted_stops_starting_runs_and_exits_2(
    tmp_path: Path, suite_file: Path, runs: FakeRuns, capsys: Any
) -> None:
    runs.interrupt_at = 2
    code, _, err = harness(
        capsys, "suite", str(suite_file), "--store", str(tmp_path), "--jobs", "2"
    )
    assert code == 2
    assert "interrupted by SIGINT: stopped after tearing down the running run(s)" in err
    assert len(runs.calls) <= 3  # the other thread finishes the run it had started
    data = json.loads((only_dir(tmp_path) / "suite.json").read_text())
    assert data["interrupted"] == "SIGINT" and data["passed"] is False


def test_parse_jobs_and_auto() -> None:
    assert parse_jobs("4") == 4 and parse_jobs("auto") == "auto"
    for bad in ("0", "-1", "x", "65"):
        with pytest.raises(ValueError, match="expected"):
            parse_jobs(bad)
    assert auto_jobs(cores=2, available_mb=20_000) == 3
    assert auto_jobs(cores=8, available_mb=20_000) == 15
    assert auto_jobs(cores=8, available_mb=900) == 3  # memory limits
    assert auto_jobs(cores=1, available_mb=100) == 1  # never below one


def test_bad_jobs_exits_2(suite_file: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["suite", str(suite_file), "--jobs", "zero"])
    assert exc.value.code == 2
    assert "--jobs: expected a positive integer or auto, got 'zero'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- sharding


def test_parse_shard_refuses_bad_k_n() -> None:
    assert (parse_shard("2/4").k, parse_shard("2/4").n) == (2, 4)
    for bad, why in [
        ("0/4", "expected K from 1 to N=4"),
        ("5/4", "expected K from 1 to N=4"),
        ("1/0", "expected N from 1"),
        ("2", "expected K/N"),
        ("a/b", "expected K/N"),
        ("1/2/3", "expected K/N"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_shard(bad)


def test_bad_shard_exits_2_with_the_reason(suite_file: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["suite", str(suite_file), "--shard", "5/4"])
    assert exc.value.code == 2
    assert "--shard: expected K from 1 to N=4 in K/N, got '5/4'" in capsys.readouterr().err


def test_shards_split_every_run_once_balanced_and_deterministic(suite_file: Path) -> None:
    suite = load_suite(suite_file)
    every = {(c.number, s) for c in suite.cases for s in c.seeds}
    durations = {c.number: expected_duration_s(c.run) for c in suite.cases}
    for n in (1, 2, 3, 4, 7, 30):
        shares = plan_shards(suite, n)
        assert len(shares) == n
        assert set().union(*shares) == every
        assert sum(len(s) for s in shares) == len(every)  # no run in two shards
        assert plan_shards(load_suite(suite_file), n) == shares  # same on every machine
        loads = [sum(durations[number] for number, _ in share) for share in shares]
        # Longest-first greedy: no shard exceeds another by more than the longest run.
        assert max(loads) - min(loads) <= max(durations.values())
    # The five 40 s runs do not all land on one of two shards.
    long_runs = [sum(1 for number, _ in s if number == 1) for s in plan_shards(suite, 2)]
    assert sorted(long_runs) == [2, 3]


def test_shards_and_merge_equal_one_unsharded_run(
    tmp_path: Path, suite_file: Path, runs: FakeRuns, capsys: Any
) -> None:
    whole_code, _, _ = harness(capsys, "suite", str(suite_file), "--store", str(tmp_path / "w"))
    runs.calls.clear()
    shard_dirs = []
    for k in (1, 2, 3):
        store = tmp_path / "ci" / f"shard-{k}"
        code, out, err = harness(
            capsys, "suite", str(suite_file), "--store", str(store), "--shard", f"{k}/3"
        )
        assert code == 0, err  # a shard carried out all its runs: the verdict is merge's
        assert f"shard {k}/3" in out + err
        shard_dirs.append(only_dir(store))
    assert len(runs.calls) == 21  # each run exactly once over the three shards
    # Shards are published elsewhere (a CI artifact): move them before merging.
    moved = tmp_path / "artifacts"
    moved.mkdir()
    # (Shards started in the same second share a directory name: one folder per shard.)
    for k, d in enumerate(shard_dirs, 1):
        (moved / f"shard-{k}").mkdir()
        os.replace(d, moved / f"shard-{k}" / d.name)
    shard_dirs = [moved / f"shard-{k}" / d.name for k, d in enumerate(shard_dirs, 1)]
    out_dir = tmp_path / "artifacts" / "merged"
    code, out, err = harness(
        capsys, "suite", "merge", *map(str, reversed(shard_dirs)), "--out", str(out_dir)
    )
    assert code == whole_code == 1
    assert summary(out_dir) == summary(only_dir(tmp_path / "w"))
    assert "flaky-safe: FAIL" in out
    # The merged index links every run's results through relative links that resolve.
    index = (out_dir / "index.html").read_text()
    links = [part.split('"')[0] for part in index.split('href="')[1:]]
    assert len(links) == 21
    assert all(not link.startswith("/") and (out_dir / link).is_file() for link in links)


def test_merge_with_baseline_gives_one_comparison(
    tmp_path: Path, suite_file: Path, runs: FakeRuns, capsys: Any
) -> None:
    base = tmp_path / "base"
    harness(
        capsys,
        "suite",
        str(suite_file),
        "--store",
        str(tmp_path / "w"),
        "--save-baseline",
        str(base),
    )
    dirs = []
    for k in (1, 2):
        harness(
            capsys,
            "suite",
            str(suite_file),
            "--store",
            str(tmp_path / f"s{k}"),
            "--shard",
            f"{k}/2",
        )
        dirs.append(str(only_dir(tmp_path / f"s{k}")))
    code, out, _ = harness(capsys, "suite", "merge", *dirs, "--baseline", str(base))
    assert code == 1  # flaky-safe still fails its expectation; nothing regressed
    assert "REGRESSED" not in out and "ok (p99 was" in out


def test_shard_refuses_baseline_options(suite_file: Path, tmp_path: Path, capsys: Any) -> None:
    code, _, err = harness(
        capsys, "suite", str(suite_file), "--shard", "1/2", "--baseline", str(tmp_path)
    )
    assert code == 2 and "go to `harness suite merge`" in err


def test_merge_refuses_missing_twice_and_mixed_shards(
    tmp_path: Path, suite_file: Path, runs: FakeRuns, capsys: Any
) -> None:
    dirs = {}
    for k, n in ((1, 3), (2, 3), (3, 3), (1, 2)):
        store = tmp_path / f"s{k}of{n}"
        harness(capsys, "suite", str(suite_file), "--store", str(store), "--shard", f"{k}/{n}")
        dirs[(k, n)] = str(only_dir(store))

    def merge(*paths: str) -> tuple[int, str]:
        code, _, err = harness(capsys, "suite", "merge", *paths)
        return code, err

    code, err = merge(dirs[(1, 3)], dirs[(3, 3)])
    assert code == 2 and "shard(s) 2/3 missing" in err
    code, err = merge(dirs[(1, 3)], dirs[(1, 3)], dirs[(2, 3)], dirs[(3, 3)])
    assert code == 2 and "given twice" in err
    code, err = merge(dirs[(1, 3)], dirs[(2, 3)], dirs[(1, 2)])
    assert code == 2 and "2-way split" in err
    code, err = merge(str(tmp_path / "nowhere"))
    assert code == 2 and "no such directory" in err
    (tmp_path / "empty").mkdir()
    code, err = merge(str(tmp_path / "empty"))
    assert code == 2 and "no suite.json" in err
    # A shard run with another --runs is another suite: its runs do not fit the split.
    other = tmp_path / "other"
    harness(
        capsys, "suite", str(suite_file), "--store", str(other), "--shard", "3/3", "--runs", "2"
    )
    code, err = merge(dirs[(1, 3)], dirs[(2, 3)], str(only_dir(other)))
    assert code == 2 and "different suite or different overrides" in err


def test_one_terminal_line_per_running_run() -> None:
    import io

    from rich.console import Console

    from harness.run.progress import RunStatus
    from harness.suite.jobs import RunLines

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120, color_system=None)
    with RunLines(console, live=True) as lines:
        first = lines.add("safe/partition seed 1")
        second = lines.add("safe/kill seed 2")
        status = RunStatus(phase="running workload and faults", leader="n2")
        status.faults = ["partition n2 | n1,n3"]
        first.phase(status, status.phase)
        rows = [str(cell) for cell in lines._render().columns[0].cells]
        assert rows == ["safe/partition seed 1", "safe/kill seed 2"]
        phases = [str(cell) for cell in lines._render().columns[2].cells]
        assert phases == ["running workload and faults", "starting"]
        faults = [str(cell) for cell in lines._render().columns[4].cells]
        assert faults == ["partition n2 | n1,n3", "-"]
        first.close()  # a finished run's line goes away; the other stays
        assert [str(c) for c in lines._render().columns[0].cells] == ["safe/kill seed 2"]
        lines.print("[1/2] safe/partition seed 1: valid (3.0 s)")
        second.close()
    assert "[1/2] safe/partition seed 1: valid (3.0 s)" in buf.getvalue()
