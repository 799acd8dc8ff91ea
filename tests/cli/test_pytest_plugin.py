"""The pytest plugin: options registered once through the entry point, validated."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness import options

USER_TEST = """
def test_options(harness_options):
    assert harness_options.target == "etcd"
    assert harness_options.nemeses == ("partition", "pause")
    assert harness_options.nodes == 5
    assert harness_options.time_limit == 12.5
    assert harness_options.seed == 7
    assert harness_options.backend == "local"
"""


def test_options_reach_a_users_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess(
        "--target=etcd",
        "--nemesis=partition,pause",
        "--nodes=5",
        "--time-limit=12.5",
        "--seed=7",
        "--backend=local",
    )
    result.assert_outcomes(passed=1)


def test_help_lists_each_option_once(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    text = result.stdout.str()
    for flag in ("--target", "--nemesis", "--backend", "--nodes", "--time-limit", "--seed"):
        assert text.count(f"  {flag}=") == 1, flag


def test_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_defaults="""
def test_defaults(harness_options):
    assert harness_options.target == "reference"
    assert harness_options.nemeses == ("none",)
    assert harness_options.nodes == 3
"""
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("--target=zookeeper", "--target: unknown target 'zookeeper'"),
        ("--nemesis=partition,flood", "--nemesis: unknown nemesis 'flood'"),
        ("--nemesis=kill,kill", "named twice"),
        ("--nodes=4", "--nodes: 4 nodes is not supported"),
        ("--time-limit=soon", "--time-limit: expected seconds"),
        ("--seed=-1", "--seed: expected 0 <= seed <= 9223372036854775807"),
        ("--backend=k8s", "--backend: unknown backend 'k8s'"),
    ],
)
def test_bad_options_exit_2_with_a_reason(
    pytester: pytest.Pytester, arg: str, message: str
) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(arg)
    assert result.ret == 2
    assert message in result.stdout.str() + result.stderr.str()


def test_option_parsers_directly() -> None:
    assert options.parse_nemeses(" partition , clock") == ("partition", "clock")
    with pytest.raises(options.OptionError, match="cannot be combined"):
        options.parse_nemeses("none,kill")
    with pytest.raises(options.OptionError, match="empty name"):
        options.parse_nemeses("kill,")


CRASHING_RUN = """
import pytest
from harness.run import runner


def test_a_scenario(harness_run, monkeypatch):
    def crash(self):
        raise ZeroDivisionError("a harness bug")

    monkeypatch.setattr(runner.Runner, "execute", crash)
    outcome = harness_run(None)
    assert outcome.verdict["valid"] is True


def test_a_real_failure():
    assert 1 == 2
"""


def test_a_harness_crash_is_exit_2_never_a_verdict(pytester: pytest.Pytester) -> None:
    """A crash inside harness_run errors the test with one line and makes the session's
    exit status 2 (1 would read as "violations found"), even beside a plain failure."""
    pytester.makepyfile(test_crash=CRASHING_RUN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 2
    result.stdout.fnmatch_lines(
        [
            "*harness errors (exit status 2)*",
            "*test_a_scenario: harness error, not a verdict: ZeroDivisionError: a harness bug",
        ]
    )


def test_a_run_that_could_not_run_is_an_error_not_a_failure(pytester: pytest.Pytester) -> None:
    # A configuration with a mistake beside the test file (found relative to it):
    # the test errors with the harness's reason, and its assertion is never reached.
    pytester.makefile(".yaml", bad="target: etcd\nnodes: 4\n")
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.scenario
        def test_mine(harness_run):
            outcome = harness_run("bad.yaml")
            assert outcome.verdict["valid"] is True
        """
    )
    result = pytester.runpytest_subprocess(
        "--target=etcd", "--harness-store", "store", "--junitxml=junit.xml"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*HarnessCouldNotRun: bad run configuration*key 'nodes'*"])
    # CI reads JUnit XML: there too it is an error, not a failure.
    suite = ET.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("errors"), suite.get("failures")) == ("1", "0")
    (case,) = suite.iter("testcase")
    error = case.find("error")
    assert error is not None and "bad run configuration" in (error.get("message") or "")
