"""The pytest plugin: options registered once through the entry point, validated."""

from __future__ import annotations

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
        ("--seed=-1", "--seed: expected a non-negative integer"),
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
