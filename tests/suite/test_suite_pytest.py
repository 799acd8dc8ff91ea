"""`pytest --suite FILE`: one test item per case, its own pass/fail, one JUnit testcase
per case; runs are replaced by fakes in the user's conftest, so no cluster is needed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

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


def _suite_json(store: Path) -> dict:
    (path,) = store.glob("suite-regress-*/suite.json")
    return json.loads(path.read_text())


def _verdicts(data: dict) -> dict:
    return {
        c["name"]: (c["passed"], c["figures"], [(r["seed"], r["valid"]) for r in c["runs"]])
        for c in data["cases"]
    }


def test_xdist_workers_share_one_suite_directory_and_index(project: pytest.Pytester) -> None:
    serial = project.runpytest_subprocess("--suite", "regress.yaml", "--harness-store=one")
    serial.assert_outcomes(passed=2, failed=1)
    result = project.runpytest_subprocess(
        "--suite", "regress.yaml", "-n", "2", "--harness-store=par", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=2, failed=1)
    # One directory for the session (not one per worker), one index, written once by the
    # controller from every worker's cases, with the same verdicts as without workers.
    (directory,) = (project.path / "par").iterdir()
    assert (directory / "index.html").is_file()
    assert "regress: 2/3 case(s) passed; index:" in result.stdout.str()
    assert _verdicts(_suite_json(project.path / "par")) == _verdicts(
        _suite_json(project.path / "one")
    )
    cases = {c.get("name") for c in ET.parse(project.path / "junit.xml").iter("testcase")}
    assert cases == {"fast-enough", "safe-valid", "unsafe-caught"}


def test_suite_shards_and_merge_equal_one_session(project: pytest.Pytester) -> None:
    from harness import cli

    whole = project.runpytest_subprocess("--suite", "regress.yaml", "--harness-store=whole")
    whole.assert_outcomes(passed=2, failed=1)
    items = 0
    for k in (1, 2):
        shard = project.runpytest_subprocess(
            "--suite", "regress.yaml", f"--suite-shard={k}/2", f"--harness-store=s{k}",
            f"--junitxml=junit-{k}.xml",
        )  # fmt: skip
        # A shard's case item fails only when a run could not run: none here.
        assert shard.ret == 0
        items += len(list(ET.parse(project.path / f"junit-{k}.xml").iter("testcase")))
    assert 3 <= items <= 4  # the 2-run case may be split over both shards
    dirs = [str(next((project.path / f"s{k}").glob("suite-regress-*"))) for k in (1, 2)]
    out = project.path / "merged"
    code = cli.main(["suite", "merge", *dirs, "--out", str(out), "--suite", "regress.yaml"])
    assert code == 1  # fast-enough fails its expectation, as in one session
    merged = json.loads((out / "suite.json").read_text())
    assert _verdicts(merged) == _verdicts(_suite_json(project.path / "whole"))


def test_bad_suite_shard_exits_2(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--suite", "regress.yaml", "--suite-shard", "3/2")
    assert result.ret == 2
    assert "--suite-shard: expected K from 1 to N=2" in result.stdout.str() + result.stderr.str()
