"""`pytest --suite FILE`: every case of a suite becomes one test item, with its own pass or
fail (and its own <testcase> in JUnit XML).

pytest only offers files it is asked to collect to `pytest_collect_file`, so the suite
files are added to the session's arguments; when no test paths were given on the command
line they replace the default ones (testpaths or the current directory), so that
`pytest --suite suites/x.yaml` runs the suite alone. Each item runs its case's seeded
runs, judges them as `harness suite` does, and fails with every unmet expectation and
regression and the run directories. The index HTML is written at the end of the session
into the suite's directory under --harness-store.

With pytest-xdist (`-n N`) every worker collects the same items; the controller chooses
each suite's directory and hands it to the workers (`workerinput`). Each item writes its
case's run records to `DIR/.cases/` as it finishes, and the index and suite.json are
written once, by the controller (or the only process), from those files.
`--suite-shard K/N` keeps this machine's share of the runs (harness/suite/shard.py): a
case item then fails only if a run could not be carried out, and `harness suite merge`
judges the shards' directories as one suite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.pytest_plugin import HarnessCrash, record_crash
from harness.suite.compare import (
    BaselineError,
    CaseVerdict,
    Figures,
    judge,
    load_baselines,
    save_baseline,
)
from harness.suite.model import Case, Suite, SuiteError, load_suite, slug
from harness.suite.runner import CaseResult, RunRecord, run_case, stop_on_signals
from harness.suite.shard import Shard, shard_runs

CASES_DIR = ".cases"  # one file of run records per finished case item
_DIRS_KEY = "harness_suite_dirs"  # workerinput: suite file -> its directory


class CaseFailed(HarnessError):
    """A case whose expectations failed or which regressed; the message says how."""


class SuitePlugin:
    """Registered by harness/pytest_plugin.py when `--suite` is given."""

    def __init__(self, config: pytest.Config, files: list[str], shard: Shard | None) -> None:
        self.config = config
        self.files = {Path(f).resolve() for f in files}
        self.shard = shard
        self.verdicts: dict[Path, tuple[Suite, list[CaseVerdict]]] = {}
        self.directories: dict[Path, Path] = {}
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            pytest.exit(f"harness: --suite {missing[0]}: no such file", returncode=2)
        if shard is not None and (
            config.getoption("--suite-baseline") or config.getoption("--suite-save-baseline")
        ):
            pytest.exit(
                "harness: --suite-baseline and --suite-save-baseline go to `harness suite "
                "merge`, which judges the whole suite; a shard holds only part of each case's "
                "runs",
                returncode=2,
            )
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and _DIRS_KEY in workerinput:
            self.directories = {Path(k): Path(v) for k, v in workerinput[_DIRS_KEY].items()}
        given = [str(f) for f in files]
        if config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = given  # only the suites: not the default test paths too
        else:
            config.args.extend(f for f in given if f not in config.args)

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> Any:
        if file_path.resolve() in self.files:
            return SuiteFile.from_parent(parent, path=file_path, plugin=self)
        return None

    def overrides(self) -> dict[str, Any]:
        """Command-line options of the plugin that make sense for every case."""
        limit = self.config.getoption("--time-limit")
        return {
            "backend": self.config.getoption("--backend"),
            "hosts": self.config.getoption("--hosts"),
            "time_limit": float(limit) if limit is not None else None,
        }

    def load(self, path: Path) -> Suite:
        return load_suite(path, overrides=self.overrides(), runs=self.runs)

    @property
    def runs(self) -> int | None:
        value = self.config.getoption("--suite-runs")
        return int(value) if value is not None else None

    def directory(self, path: Path) -> Path:
        """The directory of the suite file at `path`, made when first asked for."""
        path = path.resolve()
        if path not in self.directories:
            store = Path(self.config.getoption("--harness-store")).resolve()
            stamp = time.strftime("%Y%m%d-%H%M%S")
            base = store / f"suite-{slug(Path(path).stem)}-{stamp}"
            directory, n = base, 1
            while directory.exists():  # another session started in the same second
                n += 1
                directory = base.with_name(f"{base.name}-{n}")
            directory.mkdir(parents=True)
            self.directories[path] = directory
        return self.directories[path]

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: every worker writes into the same suite directories."""
        node.workerinput[_DIRS_KEY] = {str(p): str(self.directory(p)) for p in self.files}

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            return  # the controller writes the index once, from every worker's cases
        from harness.suite.cli import write_suite_json
        from harness.suite.index import write_index

        baseline_dir = self.config.getoption("--suite-baseline")
        for path in sorted(self.files):
            directory = self.directories.get(path)
            if directory is None or not (directory / CASES_DIR).is_dir():
                continue  # no case of this suite ran
            try:
                suite = self.load(path)
                baselines = load_baselines(suite, baseline_dir, "--suite-baseline")
            except (SuiteError, BaselineError):
                continue  # reported as a collection error already
            records = read_case_records(directory)
            verdicts = [
                judge(case, records[case.number], suite.tolerance, baselines.get(case.name))
                for case in suite.cases
                if case.number in records
            ]
            self.verdicts[path] = (suite, verdicts)
            write_index(directory, suite, verdicts, baseline_dir=baseline_dir)
            write_suite_json(
                directory,
                suite,
                verdicts,
                shard=self.shard,
                overrides={**self.overrides(), "runs": self.runs},
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.verdicts:
            return
        terminalreporter.section("harness suites")
        for path, (suite, verdicts) in self.verdicts.items():
            passed = sum(v.passed for v in verdicts)
            index = self.directories[path] / "index.html"
            what = f"shard {self.shard}: " if self.shard is not None else ""
            terminalreporter.write_line(
                f"{suite.name}: {what}{passed}/{len(verdicts)} case(s) passed; index: {index}"
            )


def write_case_records(directory: Path, result: CaseResult) -> None:
    """A finished case's records, for the process that writes the index."""
    import orjson

    cases = directory / CASES_DIR
    cases.mkdir(parents=True, exist_ok=True)
    data = {
        "case": result.case.name,
        "number": result.case.number,
        "runs": [r.to_dict() for r in result.records],
    }
    path = cases / f"{result.case.number:04d}-{slug(result.case.name)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(data))
    tmp.replace(path)


def read_case_records(directory: Path) -> dict[int, list[RunRecord]]:
    """Case number -> records, from every case file in the suite directory."""
    import orjson

    out: dict[int, list[RunRecord]] = {}
    for path in sorted((directory / CASES_DIR).glob("*.json")):
        data = orjson.loads(path.read_bytes())
        out[int(data["number"])] = [RunRecord.from_dict(r) for r in data["runs"]]
    return out


class SuiteFile(pytest.File):
    def __init__(self, *, plugin: SuitePlugin, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin

    def collect(self) -> Iterator[pytest.Item]:
        plugin = self.plugin
        try:
            suite = plugin.load(self.path)
            baselines = load_baselines(
                suite, self.config.getoption("--suite-baseline"), "--suite-baseline"
            )
        except (SuiteError, BaselineError) as exc:
            raise self.CollectError(f"harness: {exc}") from None
        only = shard_runs(suite, plugin.shard) if plugin.shard is not None else None
        for case in suite.cases:
            if only is not None:
                # This shard's share of the case's runs; none: not this shard's item.
                case = replace(case, seeds=tuple(s for s in case.seeds if (case.number, s) in only))
                if not case.seeds:
                    continue
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
        directory = plugin.directory(parent.path)
        try:
            with stop_on_signals() as stop:
                result = run_case(self.case, directory, stop=stop)
            write_case_records(directory, result)
            verdict = judge(self.case, result.records, self.suite.tolerance, self.baseline)
        except Exception as exc:
            raise record_crash(self.config, self.nodeid, f"{type(exc).__name__}: {exc}") from exc
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
        if verdict.errored:  # a run could not run: like `harness suite`, exit 2
            record_crash(self.config, self.nodeid, f"{self.case.name}: a run could not run")
        if plugin.shard is not None:
            # Part of the case's runs: only a run that could not run fails here.
            if verdict.errored:
                raise CaseFailed(failure_message(verdict))
            return
        if not verdict.passed:
            raise CaseFailed(failure_message(verdict))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, HarnessCrash) and not self.config.option.verbose:
            return str(excinfo.value)  # one line; the traceback with -v
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"suite case {self.case.label}"
