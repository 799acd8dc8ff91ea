"""`harness suite` with runs replaced by fakes: exit status, table, index, baselines,
bad input and interruption. No cluster; seconds."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness import cli
from harness.runconfig import RunConfig
from harness.suite import runner as suite_runner
from harness.suite.cli import build_table
from harness.suite.compare import judge
from harness.suite.model import load_suite
from harness.testing.suite import FakeRuns, verdict

ROOT = Path(__file__).resolve().parents[2]

SUITE = f"""
name: demo
tolerance: {{failover_p99_pct: 20, leaderless_pct_points: 5}}
defaults: {{runs: 2, time_limit: 5}}
cases:
  - name: safe
    config: {ROOT}/configs/reference/safe.yaml
    nemesis: {{faults: [partition]}}
    expect: {{valid: true, failover_p99_s: 1}}
  - name: unsafe
    config: {ROOT}/configs/detection/no-persist-kill.yaml
    expect: {{caught: true, violations: [duplicate-token, term-split-brain]}}
"""


def is_unsafe(cfg: RunConfig) -> bool:
    return cfg.server.get("persist_votes") is False


def good(cfg: RunConfig) -> Any:
    return verdict(kinds=("duplicate-token",)) if is_unsafe(cfg) else verdict()


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(SUITE)
    return path


def fake(monkeypatch: pytest.MonkeyPatch, decide: Any) -> FakeRuns:
    runs = FakeRuns(decide)
    monkeypatch.setattr(suite_runner, "execute_run", runs)
    return runs


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["suite", *args])
    out, err = capsys.readouterr()
    return code, out, err


def suite_dir(store: Path) -> Path:
    (directory,) = store.glob("suite-demo-*")
    return directory


def test_all_expectations_hold(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    runs = fake(monkeypatch, good)
    store = tmp_path / "store"
    code, out, err = run(capsys, str(suite_file), "--store", str(store), "--backend", "local")
    assert code == 0, out + err
    assert [(c.seed, c.backend, c.time_limit) for c in runs.calls] == [
        (1, "local", 5.0), (2, "local", 5.0), (1, "local", 5.0), (2, "local", 5.0)
    ]  # fmt: skip
    assert "[4/4] unsafe seed 2: caught: duplicate-token" in err
    assert "safe" in out and "2/2 duplicate-token" in out
    index = suite_dir(store) / "index.html"
    page = index.read_text()
    assert page.count('class="run') == 4 and "results.json" in page
    assert "PASS</title>" in page
    data = json.loads((suite_dir(store) / "suite.json").read_text())
    assert [c["passed"] for c in data["cases"]] == [True, True]


def test_failed_expectation_exits_1_and_says_why(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # The unsafe configuration is no longer caught in seed 2; the safe one got slow.
    def decide(cfg: RunConfig) -> Any:
        if is_unsafe(cfg):
            return verdict(kinds=("duplicate-token",) if cfg.seed == 1 else ())
        return verdict(p99_ms=1500)

    fake(monkeypatch, decide)
    code, out, _ = run(capsys, str(suite_file), "--store", str(tmp_path / "s"))
    assert code == 1
    assert "unsafe: FAIL" in out and "expected caught in every run: caught in 1/2" in out
    assert "safe: FAIL" in out and "failover p99 1.500 s > 1 s" in out
    assert "seed 2: valid: " in out  # the run directories are listed


def test_a_run_that_cannot_run_exits_2(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fake(monkeypatch, lambda cfg: "no leader agreed" if is_unsafe(cfg) else verdict())
    code, out, err = run(capsys, str(suite_file), "--store", str(tmp_path / "s"))
    assert code == 2
    assert "could not be judged: seed 1: no leader agreed" in out
    assert "unsafe seed 1: error: no leader agreed" in err


def test_baseline_save_then_compare(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    base = tmp_path / "baseline"
    fake(monkeypatch, good)
    code, out, _ = run(
        capsys, str(suite_file), "--store", str(tmp_path / "a"), "--save-baseline", str(base)
    )
    assert code == 0
    assert sorted(p.name for p in (base / "demo").iterdir()) == ["safe.json", "unsafe.json"]
    # Same figures: nothing regressed.
    code, out, _ = run(
        capsys, str(suite_file), "--store", str(tmp_path / "b"), "--baseline", str(base)
    )
    assert code == 0, out
    assert "ok (p99 was 0.200 s" in out
    # Slower failover (within the expectation of 1 s, beyond 20 % of the baseline), and
    # the safe case now shows violations: both regressions.
    fake(
        monkeypatch,
        lambda cfg: (
            verdict(kinds=("duplicate-token",))
            if is_unsafe(cfg)
            else verdict(p99_ms=300, kinds=("split-brain",) if cfg.seed == 2 else ())
        ),
    )
    store = tmp_path / "c"
    code, out, _ = run(capsys, str(suite_file), "--store", str(store), "--baseline", str(base))
    assert code == 1
    assert "REGRESSED" in out
    assert "failover p99 0.200 s -> 0.300 s" in out
    assert "safety: valid in the baseline" in out
    page = (suite_dir(store) / "index.html").read_text()
    assert "baseline p99" in page and "REGRESSED" in page


def test_a_new_case_has_no_baseline(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    (tmp_path / "empty").mkdir()
    fake(monkeypatch, good)
    code, out, _ = run(
        capsys,
        str(suite_file),
        "--store",
        str(tmp_path / "s"),
        "--baseline",
        str(tmp_path / "empty"),
    )
    assert code == 0 and out.count("new (no baseline)") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "/nonexistent-dir"], "--baseline /nonexistent-dir: no such directory"),
        (["--runs", "2"], None),
    ],
)
def test_baseline_dir_must_exist(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any,
    args: list[str], message: str | None,
) -> None:  # fmt: skip
    runs = fake(monkeypatch, good)
    code, _, err = run(capsys, str(suite_file), "--store", str(tmp_path / "s"), *args)
    if message is None:
        assert code == 0 and len(runs.calls) == 4
    else:
        assert code == 2 and message in err and runs.calls == []


def test_bad_suite_exits_2_naming_file_case_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    runs = fake(monkeypatch, good)
    path = tmp_path / "bad.yaml"
    path.write_text("cases:\n  - name: x\n    expect: {valid: maybe}\n")
    code, _, err = run(capsys, str(path), "--store", str(tmp_path / "s"))
    assert code == 2 and runs.calls == []
    assert f"harness suite: {path}: case 1 ('x'): key 'expect.valid': expected true or false" in err
    assert not (tmp_path / "s").exists()


def test_interrupted_suite_stops_and_exits_2(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    runs = fake(monkeypatch, good)
    runs.interrupt_at = 2  # Ctrl-C during the second run: the Runner tears it down
    base = tmp_path / "base"
    store = tmp_path / "s"
    code, _, err = run(capsys, str(suite_file), "--store", str(store), "--save-baseline", str(base))
    assert code == 2
    assert len(runs.calls) == 2  # no run after the interrupted one
    assert "interrupted by SIGINT: stopped after tearing down the running run(s)" in err
    assert not base.exists()  # a partial suite is no baseline
    assert "interrupted" in (suite_dir(store) / "index.html").read_text()


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGQUIT"])
def test_signal_between_runs_stops_before_the_next(
    tmp_path: Path,
    suite_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    signame: str,
) -> None:
    import os
    import signal

    runs = fake(monkeypatch, good)

    def decide(cfg: RunConfig) -> Any:
        if len(runs.calls) == 1:
            # As if the signal arrived between runs (the handler only sets a flag).
            os.kill(os.getpid(), signal.Signals[signame])
        return good(cfg)

    runs.decide = decide
    code, _, err = run(capsys, str(suite_file), "--store", str(tmp_path / "s"))
    assert code == 2 and len(runs.calls) == 1
    assert f"interrupted by {signame}" in err


def test_table_rendering(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    from harness.suite.runner import RunRecord

    ms = 1_000_000
    safe = judge(
        suite.cases[0],
        [RunRecord(1, 0, valid=True, leaderless_ns=1 * ms, span_ns=8 * ms,
                   failover_latencies_ns=[100 * ms, 400 * ms])],
        suite.tolerance,
        None,
    )  # fmt: skip
    unsafe = judge(
        suite.cases[1],
        [RunRecord(1, 0, valid=True, failover_latencies_ns=[])],
        suite.tolerance,
        None,
    )
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(build_table(suite, [safe, unsafe], with_baseline=False))
    text = console.export_text()
    lines = [line for line in text.splitlines() if "│" in line]
    assert any("safe" in line and "0.100 s" in line and "0.400 s" in line and "12.5" in line
               for line in lines), text  # fmt: skip
    assert any("unsafe" in line and "FAIL: expected caught in every run" in line for line in lines)
    for header in ("case", "runs", "violations", "failover p50", "failover p99", "leaderless %"):
        assert header in text


def test_shrink_shrinks_the_first_violating_run_of_every_failing_case(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from types import SimpleNamespace

    from harness.shrink import cli as shrink_cli

    # The safe case now has a violation in seed 2 (its expectation fails); the unsafe
    # case is caught as expected (passes: nothing to shrink).
    def decide(cfg: RunConfig) -> Any:
        if is_unsafe(cfg):
            return verdict(kinds=("duplicate-token",))
        return verdict(kinds=("split-brain",) if cfg.seed == 2 else ())

    fake(monkeypatch, decide)
    calls: list[tuple[Path, Path, dict[str, Any]]] = []

    def shrink_run(run_dir: Path, store: Path, **options: Any) -> Any:
        calls.append((run_dir, store, options))
        return SimpleNamespace(stopped="done"), store / "shrink-x", "3 faults, 5 s -> 1 fault"

    monkeypatch.setattr(shrink_cli, "shrink_run", shrink_run)
    store = tmp_path / "s"
    code, out, _err = run(
        capsys, str(suite_file), "--store", str(store), "--shrink", "--shrink-tries", "2",
        "--shrink-budget", "5m",
    )  # fmt: skip
    assert code == 1  # the suite's own verdict is unchanged by shrinking
    assert len(calls) == 1
    run_dir, where, options = calls[0]
    assert run_dir.name.startswith("fake-reference-s2-") and where == suite_dir(store)
    assert options["tries"] == 2 and options["budget_s"] == 300 and options["min_rate"] is None
    assert "shrink safe: 3 faults, 5 s -> 1 fault" in out
