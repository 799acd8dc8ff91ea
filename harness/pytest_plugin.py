"""pytest plugin (entry point `pytest11`): the harness's run options, and scenario runs.

Registered once through the package's entry point, so it behaves the same in this
repository and in a user's; the repository's conftest.py does not register it again.

Tests marked `scenario` are real runs: they are selected by giving `--target` (or
`--nemesis`) and skipped otherwise, so plain `pytest` runs only the fast tests. The
`harness_run` fixture runs the selected target under the selected nemeses and returns
the outcome; each run's directory and HTML report are listed in the terminal summary,
and kept only when its test failed (or always, with `--keep-runs`). With pytest-html
installed, a test's entry in its report links to each run's report.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import options as opts

REPORT_NAME = "report.html"  # reports.REPORT_NAME; not imported, to keep pytest start-up light

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--target", "reference", f"system under test: {', '.join(opts.TARGETS)}"),
    ("--nemesis", "none", f"faults, comma-separated: {', '.join(opts.NEMESES)}"),
    ("--backend", "auto", f"where nodes run: {', '.join(opts.BACKENDS)}"),
    ("--nodes", "3", "cluster size (odd)"),
    ("--time-limit", "30", "seconds of workload and faults per scenario"),
    ("--seed", "0", "seed of the fault schedule"),
)


_RUN_OPTIONS = pytest.StashKey[opts.RunOptions]()
_RUNS = pytest.StashKey[list[tuple[str, str]]]()  # (test id, run directory)
_FAILED = pytest.StashKey[bool]()  # whether a test's call phase failed
# option flag -> RunConfig field, for the options that override a run's configuration
_OVERRIDES = {
    "--target": "target",
    "--nemesis": "nemeses",
    "--backend": "backend",
    "--nodes": "nodes",
    "--time-limit": "time_limit",
    "--seed": "seed",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leader-harness", "leader-election fault injection")
    for flag, default, help_text in _OPTIONS:
        group.addoption(flag, action="store", default=None, help=f"{help_text} (default {default})")
    group.addoption(
        "--harness-store",
        default="store/pytest",
        help="where scenario run directories go (default store/pytest)",
    )
    group.addoption(
        "--keep-runs",
        action="store_true",
        help="keep every scenario run directory, not only failed",
    )
    # Regression suites (harness/suite/pytest_items.py): one test item per case.
    group.addoption(
        "--suite",
        action="append",
        default=[],
        metavar="FILE",
        help="run a regression suite (YAML): each case is a test item; may be repeated",
    )
    group.addoption("--suite-baseline", metavar="DIR", help="compare suite cases with DIR")
    group.addoption("--suite-save-baseline", metavar="DIR", help="save suite figures to DIR")
    group.addoption("--suite-runs", type=int, metavar="N", help="seeds 1..N for every case")


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
    config.addinivalue_line(
        "markers", "scenario: a real run of a cluster under faults (select with --target)"
    )
    try:
        config.stash[_RUN_OPTIONS] = _run_options(config)
    except opts.OptionError as exc:
        # Bad input exits with status 2, like every other entry point of the harness.
        pytest.exit(f"harness: {exc}", returncode=2)
    if config.getoption("--suite"):
        from harness.suite.pytest_items import SuitePlugin

        runs = config.getoption("--suite-runs")
        if runs is not None and not 1 <= runs <= 1000:
            pytest.exit(f"harness: --suite-runs: expected 1 to 1000, got {runs}", returncode=2)
        config.pluginmanager.register(
            SuitePlugin(config, config.getoption("--suite")), "harness-suite"
        )


def _scenarios_selected(config: pytest.Config) -> bool:
    return config.getoption("--target") is not None or config.getoption("--nemesis") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _scenarios_selected(config):
        return
    skip = pytest.mark.skip(reason="scenario run: select with --target=... and --nemesis=...")
    for item in items:
        if item.get_closest_marker("scenario") is not None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_FAILED] = report.failed
        _link_reports(item, report)


def _link_reports(item: pytest.Item, report: pytest.TestReport) -> None:
    """With pytest-html installed, link each of this test's run reports from its entry."""
    try:
        from pytest_html import extras  # optional: never a dependency of the harness
    except ImportError:
        return
    runs = [d for nodeid, d in item.config.stash.get(_RUNS, []) if nodeid == item.nodeid]
    if not runs:
        return
    # pytest-html 4 reads `extras`; older versions read `extra`: set both.
    links = getattr(report, "extras", None) or getattr(report, "extra", None) or []
    try:
        for run_dir in runs:
            page = Path(run_dir, REPORT_NAME).resolve()
            name = f"leadership report: {Path(run_dir).name}"
            links.append(extras.url(page.as_uri(), name=name))
    except Exception:  # a pytest-html whose API differs: no link, but never a broken session
        return
    report.extras = report.extra = links  # type: ignore[attr-defined]


@pytest.fixture
def harness_run(request: pytest.FixtureRequest, harness_options: opts.RunOptions) -> Any:
    """Run the selected target under the selected nemeses: `harness_run(config=None, **overrides)`
    returns the runner's outcome (`.verdict`, `.exit_code`, `.run_dir`, `.error`)."""
    from harness.run.runner import Runner
    from harness.runconfig import load_run_config

    config = request.config
    store = Path(config.getoption("--harness-store"))
    made: list[Path] = []

    # Options given on the command line override the run's configuration file; the
    # others leave the file's values (or, without a file, the defaults) in place.
    given = {
        field: getattr(harness_options, field)
        for flag, field in _OVERRIDES.items()
        if config.getoption(flag) is not None
    }

    def run(config_path: str | os.PathLike[str] | None = None, **overrides: Any) -> Any:
        cfg = load_run_config(config_path, {**given, **overrides})
        outcome = Runner(cfg, store=store).execute()
        if outcome.run_dir is not None:
            made.append(outcome.run_dir)
            config.stash.setdefault(_RUNS, []).append((request.node.nodeid, str(outcome.run_dir)))
        return outcome

    yield run
    failed = request.node.stash.get(_FAILED, True)
    if not failed and not config.getoption("--keep-runs"):
        for run_dir in made:
            shutil.rmtree(run_dir, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runs = config.stash.get(_RUNS, [])
    if not runs:
        return
    terminalreporter.section("harness runs")
    for nodeid, run_dir in runs:
        kept = "kept" if Path(run_dir).exists() else "removed (passed)"
        terminalreporter.write_line(f"{nodeid}: {run_dir} [{kept}]")
        report = Path(run_dir, REPORT_NAME)
        if report.exists():
            terminalreporter.write_line(f"    report: {report}")
        elif kept == "kept":
            terminalreporter.write_line(f"    report: {report} (not written; see the run's log)")
        else:
            terminalreporter.write_line(f"    report: {report} (removed with the run)")


@pytest.fixture(scope="session")
def harness_options(pytestconfig: pytest.Config) -> opts.RunOptions:
    """The validated `--target/--nemesis/--backend/--nodes/--time-limit/--seed` values."""
    return pytestconfig.stash[_RUN_OPTIONS]
