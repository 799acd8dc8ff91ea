"""`pytest --suite FILE`: every case of a suite becomes one test item, with its own pass or
fail (and its own <testcase> in JUnit XML).

pytest only offers files it is asked to collect to `pytest_collect_file`, so the suite
files are added to the session's arguments; when no test paths were given on the command
line they replace the default ones (testpaths or the current directory), so that
`pytest --suite suites/x.yaml` runs the suite alone. Each item runs its case's seeded
runs, judges them as `harness suite` does, and fails with every unmet expectation and
regression and the run directories. The index HTML is written at the end of the session
into the suite's directory under --harness-store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.suite.compare import (
    BaselineError,
    CaseVerdict,
    Figures,
    judge,
    load_baseline,
    save_baseline,
)
from harness.suite.model import Case, Suite, SuiteError, load_suite, slug
from harness.suite.runner import run_case, stop_on_signals


class CaseFailed(Exception):
    """A case whose expectations failed or which regressed; the message says how."""


class SuitePlugin:
    """Registered by harness/pytest_plugin.py when `--suite` is given."""

    def __init__(self, config: pytest.Config, files: list[str]) -> None:
        self.config = config
        self.files = {Path(f).resolve() for f in files}
        self.verdicts: dict[Path, tuple[Suite, list[CaseVerdict]]] = {}
        self.directories: dict[Path, Path] = {}
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            pytest.exit(f"harness: --suite {missing[0]}: no such file", returncode=2)
        given = [str(f) for f in files]
        if config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = given  # only the suites: not the default test paths too
        else:
            config.args.extend(f for f in given if f not in config.args)

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> Any:
        if file_path.resolve() in self.files:
            return SuiteFile.from_parent(parent, path=file_path, plugin=self)
        return None

    def directory(self, suite: Suite, path: Path) -> Path:
        """The suite's directory in the store, made when its first case runs."""
        if path not in self.directories:
            store = Path(self.config.getoption("--harness-store")).resolve()
            stamp = time.strftime("%Y%m%d-%H%M%S")
            directory = store / f"suite-{slug(suite.stem)}-{stamp}"
            directory.mkdir(parents=True, exist_ok=True)
            self.directories[path] = directory
        return self.directories[path]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from harness.suite.cli import write_suite_json
        from harness.suite.index import write_index

        for path, (suite, verdicts) in self.verdicts.items():
            directory = self.directories[path]
            write_index(
                directory,
                suite,
                verdicts,
                baseline_dir=self.config.getoption("--suite-baseline"),
            )
            write_suite_json(directory, suite, verdicts)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.verdicts:
            return
        terminalreporter.section("harness suites")
        for path, (suite, verdicts) in self.verdicts.items():
            passed = sum(v.passed for v in verdicts)
            index = self.directories[path] / "index.html"
            terminalreporter.write_line(
                f"{suite.name}: {passed}/{len(verdicts)} case(s) passed; index: {index}"
            )


class SuiteFile(pytest.File):
    def __init__(self, *, plugin: SuitePlugin, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin

    def collect(self) -> Iterator[pytest.Item]:
        config = self.config
        # Command-line options of the plugin that make sense for every case.
        overrides = {
            "backend": config.getoption("--backend"),
            "time_limit": (
                float(config.getoption("--time-limit"))
                if config.getoption("--time-limit") is not None
                else None
            ),
        }
        runs = config.getoption("--suite-runs")
        try:
            suite = load_suite(self.path, overrides=overrides, runs=runs)
        except SuiteError as exc:
            raise self.CollectError(f"harness: {exc}") from None
        baselines: dict[str, Figures | None] = {}
        baseline_dir = config.getoption("--suite-baseline")
        if baseline_dir is not None:
            if not Path(baseline_dir).is_dir():
                raise self.CollectError(
                    f"harness: --suite-baseline {baseline_dir}: no such directory"
                )
            try:
                baselines = {c.name: load_baseline(baseline_dir, suite, c) for c in suite.cases}
            except BaselineError as exc:
                raise self.CollectError(f"harness: {exc}") from None
        for case in suite.cases:
            yield CaseItem.from_parent(
                self, name=case.name, suite=suite, case=case, baseline=baselines.get(case.name)
            )


class CaseItem(pytest.Item):
    def __init__(
        self, *, suite: Suite, case: Case, baseline: Figures | None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case
        self.baseline = baseline
        self.user_properties.append(("case", case.name))

    def runtest(self) -> None:
        from harness.suite.cli import failure_message

        parent = self.parent
        assert isinstance(parent, SuiteFile)
        plugin = parent.plugin
        directory = plugin.directory(self.suite, parent.path)
        with stop_on_signals() as stop:
            result = run_case(self.case, directory, stop=stop)
        verdict = judge(self.case, result.records, self.suite.tolerance, self.baseline)
        plugin.verdicts.setdefault(parent.path, (self.suite, []))[1].append(verdict)
        if result.interrupted:
            pytest.exit(
                f"harness: suite interrupted during {self.case.name!r}: stopped after tearing "
                "down the current run",
                returncode=2,
            )
        save_dir = self.config.getoption("--suite-save-baseline")
        if save_dir is not None and not verdict.errored:
            save_baseline(save_dir, self.suite, verdict)
        for rec in result.records:
            if rec.run_dir:
                self.user_properties.append(("run_dir", rec.run_dir))
        if not verdict.passed:
            raise CaseFailed(failure_message(verdict))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"suite case {self.case.label}"
