"""pytest plugin (entry point `pytest11`): the harness's run options and a fixture for them.

Registered once through the package's entry point, so it behaves the same in this
repository and in a user's; the repository's conftest.py does not register it again.
"""

from __future__ import annotations

import pytest

from harness import options as opts

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--target", "reference", f"system under test: {', '.join(opts.TARGETS)}"),
    ("--nemesis", "none", f"faults, comma-separated: {', '.join(opts.NEMESES)}"),
    ("--backend", "auto", f"where nodes run: {', '.join(opts.BACKENDS)}"),
    ("--nodes", "3", "cluster size (odd)"),
    ("--time-limit", "30", "seconds of workload and faults per scenario"),
    ("--seed", "0", "seed of the fault schedule"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leader-harness", "leader-election fault injection")
    for flag, default, help_text in _OPTIONS:
        group.addoption(flag, action="store", default=None, help=f"{help_text} (default {default})")


def _run_options(config: pytest.Config) -> opts.RunOptions:
    def get(flag: str, default: str) -> str:
        value = config.getoption(flag)
        return default if value is None else str(value)

    d = dict((flag, default) for flag, default, _ in _OPTIONS)
    return opts.RunOptions(
        target=opts.parse_target(get("--target", d["--target"])),
        nemeses=opts.parse_nemeses(get("--nemesis", d["--nemesis"])),
        backend=opts.parse_backend(get("--backend", d["--backend"])),
        nodes=opts.parse_nodes(get("--nodes", d["--nodes"])),
        time_limit=opts.parse_time_limit(get("--time-limit", d["--time-limit"])),
        seed=opts.parse_seed(get("--seed", d["--seed"])),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[_RUN_OPTIONS] = _run_options(config)
    except opts.OptionError as exc:
        # Bad input exits with status 2, like every other entry point of the harness.
        pytest.exit(f"harness: {exc}", returncode=2)


_RUN_OPTIONS = pytest.StashKey[opts.RunOptions]()


@pytest.fixture(scope="session")
def harness_options(pytestconfig: pytest.Config) -> opts.RunOptions:
    """The validated `--target/--nemesis/--backend/--nodes/--time-limit/--seed` values."""
    return pytestconfig.stash[_RUN_OPTIONS]
