"""One exception root: every error class the package defines derives from HarnessError;
configuration errors are one ConfigError, which is also a ValueError; one set of exit
statuses; `harness --version`."""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

from harness import exitcodes
from harness.errors import ConfigError, HarnessError

# Deliberately not an Exception: raised by signal handlers, it must pass through every
# `except Exception` on its way to the runner's teardown (like KeyboardInterrupt).
BASE_EXCEPTION_ONLY = {"harness.run.signals.RunInterrupted"}


def package_modules() -> list[ModuleType]:
    modules = []
    # harness.nemesis, .workloads and .reports live in other folders (package-dir), so an
    # editable install does not list them under harness.__path__: walk each root.
    for root in ("harness", "harness.nemesis", "harness.workloads", "harness.reports"):
        package = importlib.import_module(root)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{root}."):
            if info.name.endswith("__main__"):
                continue  # running them is their job; the elector's is imported below
            modules.append(importlib.import_module(info.name))
    modules.append(importlib.import_module("harness.elector.__main__"))  # guarded by __name__
    return modules


def defined_exception_classes() -> dict[str, type[BaseException]]:
    found = {}
    for module in package_modules():
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_exception_class_derives_from_harness_error() -> None:
    classes = defined_exception_classes()
    # The package defines about two dozen; far fewer means the walk missed modules.
    assert len(classes) >= 24, sorted(classes)
    outside = [
        name
        for name, cls in classes.items()
        if not issubclass(cls, HarnessError) and name not in BASE_EXCEPTION_ONLY
    ]
    assert outside == []
    for name in BASE_EXCEPTION_ONLY:
        assert not issubclass(classes[name], Exception), name


def test_config_errors_are_one_class_and_value_errors() -> None:
    from harness.elector import config as elector_config
    from harness.elector.__main__ import UsageError
    from harness.options import OptionError
    from harness.runconfig import ConfigError as RunConfigError
    from harness.suite.compare import BaselineError
    from harness.suite.model import SuiteError
    from harness.targets.base import TargetError, TargetSettingsError
    from harness.workloads.settings import SettingsError

    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, HarnessError)
    # The two ConfigError classes of before are one, importable from where they were.
    assert RunConfigError is ConfigError and elector_config.ConfigError is ConfigError
    for cls in (UsageError, OptionError, BaselineError, SuiteError, SettingsError):
        assert issubclass(cls, ConfigError), cls
    # A bad server setting is still a TargetError for code that catches that.
    assert issubclass(TargetSettingsError, TargetError)
    assert issubclass(TargetSettingsError, ConfigError)


@pytest.mark.parametrize(
    "module", ["harness.cli", "harness.run.runner", "harness.suite.cli", "harness.image.cli"]
)
def test_exit_statuses_come_from_one_module(module: str) -> None:
    mod = importlib.import_module(module)
    assert (exitcodes.EXIT_VALID, exitcodes.EXIT_INVALID, exitcodes.EXIT_ERROR) == (0, 1, 2)
    for name in ("EXIT_VALID", "EXIT_INVALID", "EXIT_ERROR"):
        if hasattr(mod, name):
            assert getattr(mod, name) == getattr(exitcodes, name)
    for stale in ("EXIT_OK", "EXIT_MISSING", "EXIT_PASS", "EXIT_FAIL"):
        assert not hasattr(mod, stale), (module, stale)


def test_version_prints_the_distribution_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"harness {importlib.metadata.version('leader-harness')}"
