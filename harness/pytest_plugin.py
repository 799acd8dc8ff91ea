"""pytest plugin (entry point `pytest11`): the harness's run options, and scenario runs.

Registered once through the package's entry point, so it behaves the same in this
repository and in a user's; the repository's conftest.py does not register it again.

Tests marked `scenario` are real runs: they are selected by giving `--target` (or
`--nemesis`) and skipped otherwise, so plain `pytest` runs only the fast tests. The
`harness_run` fixture runs the selected target under the selected nemeses and returns
the outcome; a run that could not run (exit status 2: bad configuration, no leader, a
program that recorded nothing, ...) raises `HarnessCouldNotRun`, which pytest reports
as an ERROR saying why, never as a failed assertion. Each run's directory and HTML
report are listed in the terminal summary, and kept only when its test failed (or
always, with `--keep-runs`). With pytest-html installed, a test's entry in its report
links to each run's report.

A crash of the harness itself (an unexpected exception in a run or a suite case, or a
case run that could not run) is never reported as a verdict: the test errors with one
line saying what failed, and the session's exit status becomes 2, as for `harness`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import options as opts
from harness.errors import HarnessError

REPORT_NAME = "report.html"  # reports.REPORT_NAME; not imported, to keep pytest start-up light

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--target", "reference", "system under test: {targets}"),
    ("--nemesis", "none", "faults, comma-separated: {nemeses}"),
    ("--backend", "auto", "where nodes run: {backends}"),
    ("--nodes", "3", "cluster size (odd)"),
    (
        "--time-limit",
        "30 s, or longer to fit three of the target's long faults",
        "seconds of workload and faults per scenario",
    ),
    ("--seed", "0", "seed of the fault schedule"),
)


_RUN_OPTIONS = pytest.StashKey[opts.RunOptions]()
_RUNS = pytest.StashKey[list[tuple[str, str]]]()  # (test id, run directory)
_FAILED = pytest.StashKey[bool]()  # whether a test's call phase failed
_CRASHES = pytest.StashKey[list[str]]()  # harness crashes: the session exits 2, not 1


class HarnessCrash(HarnessError):
    """The harness failed (not the system under test): never a verdict."""


def record_crash(config: pytest.Config, nodeid: str, what: str) -> HarnessCrash:
    """Remember a crash for the session's exit status; returns the exception to raise."""
    from harness.oneline import one_line

    line = f"{nodeid}: harness error, not a verdict: {one_line(what)}"
    config.stash.setdefault(_CRASHES, []).append(line)
    return HarnessCrash(line)


# option flag -> RunConfig field, for the options that override a run's configuration
_OVERRIDES = {
    "--target": "target",
    "--nemesis": "nemeses",
    "--backend": "backend",
    "--nodes": "nodes",
    "--time-limit": "time_limit",
    "--seed": "seed",
}


class HarnessCouldNotRun(HarnessError):
    """The run could not run (exit status 2): an error of the test's set-up, not a
    verdict. The message is the harness's reason and the run directory."""


def _names() -> dict[str, str]:
    """The registries' names for the options' help (installed plugins included)."""
    try:
        return {
            "targets": ", ".join(opts.target_names()),
            "nemeses": ", ".join(opts.nemesis_names()),
            "backends": ", ".join(opts.backend_names()),
        }
    except ValueError as exc:  # a broken plugin: say so where the names would be
        return dict.fromkeys(("targets", "nemeses", "backends"), f"(unavailable: {exc})")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leader-harness", "leader-election fault injection")
    names = _names()
    for flag, default, help_text in _OPTIONS:
        group.addoption(
            flag,
            action="store",
            default=None,
            help=f"{help_text.format(**names)} (default {default})",
        )
    group.addoption(
        "--hosts", default=None, metavar="FILE", help="the ssh backend's inventory (hosts.yaml)"
    )
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
    group.addoption(
        "--suite-shard",
        metavar="K/N",
        help="run only shard K of N of the suites' runs; combine with `harness suite merge`",
    )


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
        time_limit=(
            None
            if config.getoption("--time-limit") is None
            else opts.parse_time_limit(str(config.getoption("--time-limit")))
        ),
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
        from harness.suite.shard import parse_shard

        shard_text = config.getoption("--suite-shard")
        try:
            shard = parse_shard(shard_text) if shard_text is not None else None
        except ValueError as exc:
            pytest.exit(f"harness: --suite-shard: {exc}", returncode=2)
        config.pluginmanager.register(
            SuitePlugin(config, config.getoption("--suite"), shard), "harness-suite"
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
        if report.failed and _could_not_run(report):
            # Reported as a failed set-up, which is what JUnit XML (and every CI that
            # reads it) counts as an error rather than a failure: the system was never
            # judged. The terminal says ERROR too (pytest_report_teststatus).
            report.when = "setup"


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """A scenario whose run could not run is an ERROR (like a broken fixture), not a
    FAILED verdict: the harness never judged the system."""
    if report.when in ("setup", "call") and report.failed and _could_not_run(report):
        return "error", "E", "ERROR"
    return None


def _could_not_run(report: pytest.TestReport) -> bool:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", "") or ""
    return message.startswith(f"{HarnessCouldNotRun.__module__}.{HarnessCouldNotRun.__name__}")


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
    if config.getoption("--hosts") is not None:
        given["hosts"] = str(Path(config.getoption("--hosts")).resolve())

    def run(config_path: str | os.PathLike[str] | None = None, **overrides: Any) -> Any:
        from harness.runconfig import ConfigError

        if config_path is not None and not Path(config_path).is_absolute():
            # Relative to the working directory, or else to the test's own file: a
            # team's tests name their configurations the way their files sit.
            beside = Path(str(request.node.path)).parent / config_path
            if not Path(config_path).exists() and beside.exists():
                config_path = beside
        try:
            cfg = load_run_config(config_path, {**given, **overrides})
        except ConfigError as exc:
            raise HarnessCouldNotRun(f"bad run configuration: {exc}") from None
        try:
            outcome = Runner(cfg, store=store).execute()
        except Exception as exc:
            raise record_crash(config, request.node.nodeid, f"{type(exc).__name__}: {exc}") from exc
        if outcome.run_dir is not None:
            made.append(outcome.run_dir)
            config.stash.setdefault(_RUNS, []).append((request.node.nodeid, str(outcome.run_dir)))
        if outcome.exit_code == 2:
            where = f" (run directory {outcome.run_dir})" if outcome.run_dir else ""
            raise HarnessCouldNotRun(f"the run could not run: {outcome.error}{where}")
        return outcome

    yield run
    failed = request.node.stash.get(_FAILED, True)
    if not failed and not config.getoption("--keep-runs"):
        for run_dir in made:
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # 1 would read as "violations found"; a harness crash is exit 2 (as for `harness`).
    if session.config.stash.get(_CRASHES, []) and exitstatus in (0, 1):
        session.exitstatus = 2


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    crashes = config.stash.get(_CRASHES, [])
    if crashes:
        terminalreporter.section("harness errors (exit status 2)")
        for line in crashes:
            terminalreporter.write_line(line)
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
