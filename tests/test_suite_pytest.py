"""`pytest --suite FILE`: one test item per case, its own pass/fail, one JUnit testcase
per case; runs are replaced by fakes in the user's conftest, so no cluster is needed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from pathlib import Path

from harness.run.runner import RunOutcome
from harness.suite import runner


def fake_run(cfg, store, progress):
    run_dir = Path(store).resolve() / f"run-s{cfg.seed}"
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text("{}")
    ms = 1_000_000
    verdict = {
        "valid": True,
        "violations": [],
        "stats": {
            "acquisitions": 3, "leaderless_ns": 1 * ms, "span_ns": 10 * ms,
            "failover_ns": {"count": 1, "p50": 5 * ms, "p99": 9 * ms, "max": 9 * ms},
        },
    }
    return RunOutcome(run_dir, verdict, 0, None, "local")


runner.execute_run = fake_run
"""

SUITE = f"""
cases:
  - name: safe-valid
    config: {ROOT}/configs/reference/safe.yaml
    nemesis: {{faults: [partition]}}
    runs: 2
  - name: unsafe-caught
    config: {ROOT}/configs/detection/no-persist-kill.yaml
    runs: 1
    expect: {{caught: true}}
  - name: fast-enough
    config: {ROOT}/configs/reference/safe.yaml
    runs: 1
    expect: {{failover_p99_s: 0.5}}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", regress=SUITE)
    # An ordinary test next to the suite: `pytest --suite` alone must not run it.
    pytester.makepyfile(test_other="def test_other():\n    assert False\n")
    return pytester


def test_one_item_per_case_and_junit(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "--suite", "regress.yaml", "--junitxml=junit.xml", "--harness-store=store", "-v"
    )
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "regress.yaml::safe-valid PASSED" in out
    assert "regress.yaml::unsafe-caught FAILED" in out
    assert "regress.yaml::fast-enough PASSED" in out
    assert "test_other" not in out
    # The failure says which expectation failed and where the run is.
    assert "expected caught in every run: caught in 0/1" in out
    assert "seed 1: valid: " in out and "run-s1" in out
    tree = ET.parse(project.path / "junit.xml")
    cases = {c.get("name"): c for c in tree.iter("testcase")}
    assert sorted(cases) == ["fast-enough", "safe-valid", "unsafe-caught"]
    assert cases["unsafe-caught"].find("failure") is not None
    assert cases["safe-valid"].find("failure") is None
    (index,) = (project.path / "store").glob("suite-regress-*/index.html")
    assert "safe-valid" in index.read_text() and "harness suites" in out


def test_k_selects_cases_and_explicit_paths_still_run(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "--suite", "regress.yaml", "-k", "valid", "--harness-store=store"
    )
    result.assert_outcomes(passed=1, deselected=2)
    both = project.runpytest_subprocess("--suite", "regress.yaml", "test_other.py")
    both.assert_outcomes(passed=2, failed=2)


def test_baseline_options(project: pytest.Pytester) -> None:
    first = project.runpytest_subprocess(
        "--suite", "regress.yaml", "--suite-save-baseline", "base", "--harness-store=store"
    )
    first.assert_outcomes(passed=2, failed=1)
    saved = sorted(p.name for p in (project.path / "base" / "regress").iterdir())
    assert saved == ["fast-enough.json", "safe-valid.json", "unsafe-caught.json"]
    # Make the baseline's p99 much smaller: this run's identical figures now regress.
    path = project.path / "base" / "regress" / "fast-enough.json"
    path.write_text(
        path.read_text().replace('"failover_p99_ns": 9000000', '"failover_p99_ns": 1000')
    )
    second = project.runpytest_subprocess(
        "--suite", "regress.yaml", "--suite-baseline", "base", "--harness-store=store"
    )
    second.assert_outcomes(passed=1, failed=2)
    assert "regressed: failover p99 0.000 s -> 0.009 s" in second.stdout.str()


def test_bad_suite_is_a_collection_error_naming_case_and_key(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", bad="cases:\n  - name: x\n    runs: many\n")
    result = pytester.runpytest_subprocess("--suite", "bad.yaml")
    assert result.ret == 2
    assert "bad.yaml: case 1 ('x'): key 'runs': expected an integer" in result.stdout.str()
    missing = pytester.runpytest_subprocess("--suite", "absent.yaml")
    assert missing.ret == 2
    assert "--suite absent.yaml: no such file" in missing.stdout.str() + missing.stderr.str()
