"""Suite files: parsing, merging with run configurations, and errors naming file, case, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.suite.model import (
    Expect,
    SuiteError,
    Tolerance,
    load_suite,
    merge,
    parse_expect,
)

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted((ROOT / "suites").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, text))
    return str(info.value)


def test_config_plus_overrides_and_seeds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
name: timeouts
tolerance: {{failover_p99_pct: 10, leaderless_pct_points: 2}}
defaults: {{time_limit: 7, runs: 2}}
cases:
  - name: etcd-500
    config: {ROOT}/configs/etcd/guarded.yaml
    server: {{election_timeout_ms: 500, heartbeat_interval_ms: 50}}
    nemesis: {{faults: [partition]}}
    expect: {{valid: true, failover_p99_s: 3}}
  - name: consul-naive
    config: {ROOT}/configs/detection/consul-naive-pause.yaml
    seeds: [4, 9]
    expect: {{caught_at_least: 0.5, violations: [split-brain, stale-write]}}
""",
    )
    suite = load_suite(path, overrides={"backend": "local"})
    assert suite.name == "timeouts"
    assert suite.tolerance == Tolerance(10.0, 0.0, 2.0)
    etcd, consul = suite.cases
    assert etcd.seeds == (1, 2)
    # Mappings merge: the config's other server keys stay, the case's replace.
    assert etcd.run.server["election_timeout_ms"] == 500
    assert etcd.run.server["heartbeat_interval_ms"] == 50
    assert etcd.run.server["election"] == {"name": "harness-leader", "lease_ttl_s": 2}
    assert etcd.run.workload.discipline == "guarded" and etcd.run.fencing is True
    assert etcd.run.nemeses == ("partition",)
    assert etcd.run.time_limit == 7.0  # the suite default (the config sets none)
    assert etcd.run.backend == "local"
    assert etcd.expect == Expect(valid=True, failover_p99_s=3.0)
    # The configuration's own time limit beats the suite's defaults.
    assert consul.run.time_limit == 60.0
    assert consul.seeds == (4, 9)
    assert consul.expect.violations == ("split-brain", "stale-write")


def test_plain_reference_config_and_server_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
cases:
  - config: {ROOT}/configs/reference/safe.yaml
    nemesis: {{faults: [kill]}}
  - name: no-persist
    config: {ROOT}/configs/detection/no-persist-kill.yaml
    server: {{election_timeout_ms: [300, 400]}}
    expect: {{caught: true}}
""",
    )
    safe, no_persist = load_suite(path, runs=5).cases
    assert safe.name == "case-1"
    assert safe.run.target == "reference" and safe.run.server["persist_votes"] is True
    assert safe.expect == Expect(valid=True)  # the default expectation
    assert safe.seeds == (1, 2, 3, 4, 5)
    # The config's server is a file; the case overrides one key of it.
    assert no_persist.run.server["persist_votes"] is False
    assert no_persist.run.server["election_timeout_ms"] == [300, 400]
    assert no_persist.expect.caught_at_least == 1.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("cases: []", "key 'cases': expected a non-empty list"),
        ("cases: [{}]\nextra: 1", "unknown key 'extra'"),
        ("cases:\n  - name: a\n    nodez: 3", "case 1 ('a'): unknown key 'nodez'"),
        ("cases:\n  - name: a\n  - name: b\n    nodes: 4", "case 2 ('b'): key 'nodes': 4 nodes"),
        ("cases:\n  - name: a\n    runs: 0", "case 1 ('a'): key 'runs': expected an integer"),
        ("cases:\n  - name: a\n    runs: 2\n    seeds: [1]", "key 'seeds': give either runs"),
        ("cases:\n  - name: a\n    seeds: [1, 1]", "key 'seeds': expected distinct"),
        ("cases:\n  - name: a\n    expect: {fast: true}", "unknown key 'expect.fast'"),
        (
            "cases:\n  - name: a\n    expect: {valid: true, caught: true}",
            "key 'expect': contradicts itself",
        ),
        (
            "cases:\n  - name: a\n    expect: {violations: [two-leaders]}",
            "key 'expect.violations[0]': expected a violation kind",
        ),
        (
            "cases:\n  - name: a\n    expect: {allow: [split-brain, fork]}",
            "key 'expect.allow[1]': expected a violation kind",
        ),
        (
            "cases:\n  - name: a\n    expect: {allow: split-brain}",
            "key 'expect.allow': expected a list of violation kinds",
        ),
        (
            "cases:\n  - name: a\n    expect: {valid: true, allow: [split-brain]}",
            "key 'expect.allow': contradicts valid: true",
        ),
        (
            "cases:\n  - name: a\n    expect: {failover_p99_s: soon}",
            "key 'expect.failover_p99_s': expected a number",
        ),
        (
            "cases:\n  - name: a\n    expect: {leaderless_pct_max: 120}",
            "key 'expect.leaderless_pct_max': expected a number from 0 to 100",
        ),
        (
            "cases:\n  - name: a\n    expect: {elections_min: 9, elections_max: 3}",
            "key 'expect.elections_min': is more than elections_max",
        ),
        (
            "cases:\n  - name: a\n    expect: {elections_min: -1}",
            "key 'expect.elections_min': expected an integer",
        ),
        ("cases:\n  - name: a\n  - name: a", "case 2 ('a'): key 'name': the name is already"),
        ("cases:\n  - name: a b\n  - name: a-b", "key 'name': too close"),
        ("cases:\n  - name: a\n    config: nowhere.yaml", "case 1 ('a'): key 'config': no such"),
        ("tolerance: {p99: 3}\ncases: [{}]", "unknown key 'tolerance.p99'"),
        ("defaults: {run: 3}\ncases: [{}]", "unknown key 'defaults.run'"),
        (
            "cases:\n  - name: a\n    target: etcd\n    server: {election_timeout_ms: 9}",
            "case 1 ('a'): server: key 'server.election_timeout_ms'",
        ),
        (
            "cases:\n  - name: a\n    nemesis: {pause: {modes: [nap]}}",
            "case 1 ('a'): ",
        ),
        ("cases: [1]", "case 1: expected a mapping"),
        ("cases:\n  - name: [x]", "case 1: key 'name': expected a non-empty string"),
        ("cases: [{x: 1}", "invalid YAML"),
    ],
)
def test_errors_name_file_case_and_key(tmp_path: Path, text: str, needle: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(str(tmp_path / "suite.yaml")), message
    assert needle in message, message


def test_errors_in_a_config_file_name_it_and_the_case(tmp_path: Path) -> None:
    write(tmp_path, "target: etcd\nnodes: 2\n", "run.yaml")
    message = error_of(tmp_path, "cases:\n  - name: a\n    config: run.yaml\n")
    assert message.startswith(f"{tmp_path / 'suite.yaml'}: case 1 ('a'): key 'config': ")
    assert f"{tmp_path / 'run.yaml'}: key 'nodes'" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="cannot read"):
        load_suite(tmp_path / "none.yaml")


def test_merge() -> None:
    assert merge({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "e": 2}) == {
        "a": {"b": 1, "c": [2]},
        "d": 1,
        "e": 2,
    }


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_shipped_suites_are_valid(path: Path) -> None:
    suite = load_suite(path)
    assert suite.cases
    for case in suite.cases:
        assert len(case.seeds) >= 1
        assert case.expect.describe(), case.name


def test_allow_parses_without_asking_for_validity() -> None:
    expect = parse_expect({"allow": ["split-brain"], "acquisitions_min": 1}, "s.yaml")
    assert expect == Expect(allow=("split-brain",), acquisitions_min=1)
    assert "no violations but of kinds split-brain" in expect.describe()
